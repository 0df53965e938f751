"""Deterministic ids. The engine keeps one counter per kind (part of its state, so a refused
command never consumes an id) and asks an injected factory to render ``(kind, n)`` as a string.
Give each process its own ``prefix`` (e.g. node and start date) to keep ids unique across restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class IdKind(StrEnum):
    RFQ = "RFQ"
    QUOTE = "Q"
    COUNTER = "CTR"
    TRADE = "T"


IdFactory = Callable[[IdKind, int], str]


def sequential_ids(prefix: str = "") -> IdFactory:
    """``(RFQ, 7)`` -> ``"{prefix}RFQ-00000007"``."""

    def make(kind: IdKind, n: int) -> str:
        return f"{prefix}{kind.value}-{n:08d}"

    return make
