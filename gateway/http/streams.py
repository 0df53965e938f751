"""Desk event streams: each WebSocket subscriber gets its own desk's events, nothing else.

Events are published from the negotiation thread and delivered on the subscriber's event loop.
A subscriber that falls ``MAX_BACKLOG`` events behind is cut off rather than let memory grow;
it reconnects and reads the RFQs it missed over HTTP. What the gateway published at start-up
(:meth:`DeskHub.holding`: what expired while it was down) waits for each desk's first subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator

from gateway.jsonable import event_json
from otc.negotiation import events as ev

log = logging.getLogger("fixbridge.streams")
MAX_BACKLOG = 10_000
CLOSE = object()
GONE = object()  # the desk closed its side: stop sending


def desk_of(event: ev.Event) -> str | None:
    if event.audience in (ev.Audience.DESK, ev.Audience.PARTIES):
        return getattr(event, "desk_id", None)
    return None


class DeskHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = defaultdict(
            set
        )
        self._holding = False
        self._held: dict[str, list[dict]] = {}

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """While this lasts (start-up), events for a desk with no subscriber are kept for its
        next one, which receives them first."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def subscribe(self, desk_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(MAX_BACKLOG)
        with self._lock:
            for payload in self._held.pop(desk_id, ()):
                queue.put_nowait(payload)
            self._subs[desk_id].add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, desk_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subs[desk_id] = {s for s in self._subs[desk_id] if s[1] is not queue}

    def subscribers(self, desk_id: str) -> int:
        with self._lock:
            return len(self._subs[desk_id])

    def sink(self, events: list[ev.Event]) -> None:
        for event in events:
            desk = desk_of(event)
            if desk is None:
                continue
            with self._lock:
                subs = list(self._subs.get(desk, ()))
                if not subs and self._holding:
                    held = self._held.setdefault(desk, [])
                    if len(held) < MAX_BACKLOG // 2:
                        held.append(event_json(event))
                    elif len(held) == MAX_BACKLOG // 2:
                        held.append(
                            {
                                "event": "Truncated",
                                "desk_id": desk,
                                "text": "more happened at start-up: read the RFQs back",
                            }
                        )
                        log.warning(
                            "desk %s: start-up events beyond %d not kept", desk, MAX_BACKLOG // 2
                        )
                    continue
            if not subs:
                continue
            payload = event_json(event)
            for loop, queue in subs:
                loop.call_soon_threadsafe(_offer, queue, payload)


def _offer(queue: asyncio.Queue, payload: dict) -> None:
    try:
        queue.put_nowait(payload)
    except asyncio.QueueFull:
        log.warning("desk stream subscriber fell %d events behind; closing it", MAX_BACKLOG)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(CLOSE)
