"""Which OTC desks see a client's RFQ, from config-like input.

Config shape (e.g. a TOML table loaded by the edge)::

    {"CLIENT1": {"option": ["DESK_A", "DESK_B"], "*": ["DESK_A"]},
     "*":       {"future": ["DESK_C"]}}

Lookup order for (client, kind): (client, kind), (client, "*"), ("*", kind), ("*", "*"); the first
entry found wins, and an empty list there means "no desk" (it does not fall through). An RFQ whose
priced legs span several kinds goes to the desks routed for *every* kind (hedge legs do not count:
any desk quoting the package hedges it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from fixspec.instruments import InstrumentKind

WILDCARD = "*"


class RoutingConfigError(ValueError):
    """The routing config is malformed; names the offending entry."""


class RoutingTable:
    def __init__(self, routes: Mapping[tuple[str, str], tuple[str, ...]]) -> None:
        self._routes = dict(routes)

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Sequence[str]]]) -> RoutingTable:
        kinds = {k.value for k in InstrumentKind} | {WILDCARD}
        routes: dict[tuple[str, str], tuple[str, ...]] = {}
        for client_id, by_kind in config.items():
            if not isinstance(client_id, str) or not client_id:
                raise RoutingConfigError(f"client id must be a non-empty string, got {client_id!r}")
            if not isinstance(by_kind, Mapping):
                raise RoutingConfigError(f"routes for {client_id!r} must be a table of kinds")
            for kind, desks in by_kind.items():
                if kind not in kinds:
                    raise RoutingConfigError(
                        f"{client_id!r}: unknown instrument kind {kind!r} "
                        f"(expected one of {sorted(kinds)})"
                    )
                if isinstance(desks, str) or not all(isinstance(d, str) and d for d in desks):
                    raise RoutingConfigError(
                        f"{client_id!r}/{kind}: desks must be a list of non-empty strings"
                    )
                if len(set(desks)) != len(desks):
                    raise RoutingConfigError(f"{client_id!r}/{kind}: desk listed twice")
                routes[(client_id, kind)] = tuple(desks)
        return cls(routes)

    def desks_for_kind(self, client_id: str, kind: InstrumentKind) -> tuple[str, ...]:
        for key in (
            (client_id, kind.value),
            (client_id, WILDCARD),
            (WILDCARD, kind.value),
            (WILDCARD, WILDCARD),
        ):
            if key in self._routes:
                return self._routes[key]
        return ()

    def desks_for(self, client_id: str, kinds: Iterable[InstrumentKind]) -> tuple[str, ...]:
        """Desks routed for every kind in ``kinds``, in the order the first kind lists them."""
        result: tuple[str, ...] | None = None
        for kind in kinds:
            desks = self.desks_for_kind(client_id, kind)
            result = desks if result is None else tuple(d for d in result if d in desks)
        return result or ()

    def all_desks(self) -> frozenset[str]:
        return frozenset(d for desks in self._routes.values() for d in desks)
