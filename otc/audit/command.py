"""Command entries: one audit entry for one command and everything it caused. Pure.

An order message a client sends is one command: the message in, the order state changes the
core made for it, and every message sent because of it (the ExecutionReports to this client,
fills to a contra client, a session Reject). Recording them as one ``fix.command`` entry, not
one entry per message and change, makes the causal group atomic (all of it is in the trail or
none of it) and costs one hash, one tree leaf and one line instead of five.

The payload keeps every part exactly as it would have been recorded on its own, in the order
it happened::

    {"msg_type": "D",
     "parts": [{"kind": "fix.in", "actor": "session:C1", "payload": {"msg_type": "D", "wire": ...}},
               {"kind": "order.state", "actor": "client:C1", "payload": {"order_id": ...}},
               {"kind": "fix.out", "actor": "session:C1", "payload": {"msg_type": "8", ...}},
               ...]}

The first part is always the inbound message. Readers that understand single entries read a
command through :func:`parts_of`, which answers the parts as ``(kind, actor, payload)``, and for
any other entry the entry itself: search, the compliance views and exports need no other rule.
Verification never reads a payload, so a command verifies as any entry does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otc.audit.entry import validate_actor, validate_kind

__all__ = ["COMMAND", "command_payload", "parts_of"]

COMMAND = "fix.command"

Part = tuple[str, str, Mapping[str, Any]]


def command_payload(parts: Sequence[Part]) -> dict[str, Any]:
    """The payload of a command entry; ``parts[0]`` is the inbound message (``fix.in``). Each
    part's kind and actor obey the rules of an entry's own (``EntryError`` otherwise)."""
    if not parts or parts[0][0] != "fix.in":
        raise ValueError("a command starts with the message that caused it (fix.in)")
    for kind, actor, _ in parts:
        validate_kind(kind)
        validate_actor(actor)
    return {
        "msg_type": parts[0][2].get("msg_type", ""),
        "parts": [{"kind": k, "actor": a, "payload": p} for k, a, p in parts],
    }


def parts_of(kind: str, actor: str, payload: Mapping[str, Any]) -> list[Part]:
    """A command's parts, in order; any other entry (or a malformed command) as itself."""
    if kind != COMMAND:
        return [(kind, actor, payload)]
    parts = payload.get("parts")
    if not isinstance(parts, list):
        return [(kind, actor, payload)]
    out: list[Part] = []
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        k, a, p = part.get("kind"), part.get("actor"), part.get("payload")
        if isinstance(k, str) and isinstance(a, str) and isinstance(p, Mapping):
            out.append((k, a, p))
    return out or [(kind, actor, payload)]
