"""Drop copy sessions: a copy of every ExecutionReport and TradeCaptureReport a client is sent.

A drop copy session (``[fix.drop_copy.<CompID>] clients = [...]``) is a reader: a middle or back
office, a risk system. The conventions, as FIX 4.4 has them:

- each copy carries CopyMsgIndicator(797)=Y and keeps the original's ExecID, TradeReportID and
  every other field, so it reconciles one to one with what the client holds;
- the client it went to is a Parties entry with PartyRole(452)=3 (ClientID), PartyIDSource D and
  the client's CompID: in the ExecutionReport's Parties, and in the client's side (NoSides) of a
  TradeCaptureReport, which has no Parties of its own;
- it may send TradeCaptureReportRequests (its clients' trades); any other business message is
  refused with BusinessMessageReject 380=6 (not authorized) naming why.

Copies go into the drop copy session like any message: QuickFIX stores them while it is logged
off (its configuration keeps sequence numbers across logons) and resends them when it asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fixspec.codec import OutField

COPIED = frozenset({"8", "AE"})
CLIENT_ID_ROLE = "3"  # PartyRole(452) ClientID
PARTY_ID_SOURCE = "D"  # proprietary: our CompIDs
REQUESTS_ALLOWED = frozenset({"AD"})  # what a drop copy session may send


class DropCopy:
    """Which drop copy sessions copy which clients. ``routes``: drop copy CompID -> clients."""

    def __init__(self, routes: Mapping[str, Sequence[str]]) -> None:
        self.routes = {dc: frozenset(clients) for dc, clients in routes.items()}
        self._copiers: dict[str, tuple[str, ...]] = {}
        for dc, clients in sorted(self.routes.items()):
            for client in clients:
                self._copiers[client] = (*self._copiers.get(client, ()), dc)

    def is_drop_copy(self, comp_id: str) -> bool:
        return comp_id in self.routes

    def copiers(self, client: str, msg_type: str) -> tuple[str, ...]:
        """The drop copy sessions that receive a copy of ``msg_type`` sent to ``client``."""
        return self._copiers.get(client, ()) if msg_type in COPIED else ()

    def clients_of(self, comp_id: str) -> frozenset[str]:
        """Whose trades ``comp_id`` may ask for: its own, or a drop copy's clients'."""
        return self.routes.get(comp_id, frozenset({comp_id}))

    def refusal(self, comp_id: str, msg_type: str) -> str | None:
        """Why a message from ``comp_id`` is refused (a drop copy sending business), or None."""
        if comp_id not in self.routes or msg_type in REQUESTS_ALLOWED:
            return None
        return (
            f"{comp_id} is a drop copy session: it receives copies and may send only "
            f"TradeCaptureReportRequest (AD); MsgType {msg_type} refused"
        )


def _client_party(client: str) -> list[OutField]:
    return [(448, client), (447, PARTY_ID_SOURCE), (452, CLIENT_ID_ROLE)]


def _with_party(fields: list[OutField], client: str) -> list[OutField]:
    """``fields`` with the ClientID party added to its Parties group (made if absent)."""
    out: list[OutField] = []
    added = False
    for tag, value in fields:
        if tag == 453 and isinstance(value, list):
            out.append((453, [*value, _client_party(client)]))
            added = True
        else:
            out.append((tag, value))
    return out if added else [*out, (453, [_client_party(client)])]


def _client_side(sides: list[list[OutField]], client: str) -> int:
    """The index of ``client``'s entry in NoSides (the first if no party names it)."""
    for i, side in enumerate(sides):
        for tag, value in side:
            if tag == 453 and isinstance(value, list) and any((448, client) in p for p in value):
                return i
    return 0


def copy_of(msg_type: str, fields: list[OutField], client: str) -> list[OutField]:
    """The copy of a message sent to ``client``: CopyMsgIndicator=Y and the ClientID party."""
    if msg_type == "AE":
        body: list[OutField] = []
        for tag, value in fields:
            if tag == 552 and isinstance(value, list) and value:
                sides = list(value)
                i = _client_side(sides, client)
                sides[i] = _with_party(sides[i], client)
                body.append((552, sides))
            else:
                body.append((tag, value))
    else:
        body = _with_party(fields, client)
    return [(797, "Y"), *body]
