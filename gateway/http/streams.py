"""Desk event streams: each WebSocket subscriber gets its own desk's events, nothing else.

Events are published from the negotiation thread and delivered on the subscriber's event loop.
A subscriber that falls ``MAX_BACKLOG`` events behind is cut off rather than let memory grow;
it reconnects and reads the RFQs it missed over HTTP. What the gateway published at start-up
(:meth:`DeskHub.holding`: what expired while it was down) waits for each desk's first subscriber.

Events of an anonymous RFQ show the client's alias instead of its id (``identity``). The hub also
counts each desk's connections, so the stream route can tell when a desk's last one closed
(cancel-on-disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gateway.http.anonymity import masked
from gateway.jsonable import event_json
from otc.negotiation import events as ev

log = logging.getLogger("fixbridge.streams")
MAX_BACKLOG = 10_000
CLOSE = object()
GONE = object()  # the desk closed its side: stop sending


@dataclass(frozen=True, slots=True)
class CloseWith:
    """Close the desk's stream with this WebSocket close code and reason (a policy decision
    taken by whoever reads the desk's messages)."""

    code: int
    reason: str


def desk_of(event: ev.Event) -> str | None:
    if event.audience in (ev.Audience.DESK, ev.Audience.PARTIES):
        return getattr(event, "desk_id", None)
    return None


# rfq id -> (client id, alias) when the RFQ is anonymous, else None
Identity = Callable[[str | None], tuple[str, str] | None]


class DeskHub:
    def __init__(self, identity: Identity | None = None) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self._subs: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = defaultdict(
            set
        )
        self._holding = False
        self._held: dict[str, list[dict]] = {}
        self._cancel_on_disconnect: set[str] = set()  # desks a connection asked it for

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """While this lasts (start-up), events for a desk with no subscriber are kept for its
        next one, which receives them first."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False

    def subscribe(self, desk_id: str, cancel_on_disconnect: bool = False) -> asyncio.Queue:
        """A new connection of ``desk_id``; ``cancel_on_disconnect`` asks that the desk's
        quotes be pulled when its last connection closes."""
        queue: asyncio.Queue = asyncio.Queue(MAX_BACKLOG)
        with self._lock:
            if cancel_on_disconnect:
                self._cancel_on_disconnect.add(desk_id)
            for payload in self._held.pop(desk_id, ()):
                queue.put_nowait(payload)
            self._subs[desk_id].add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, desk_id: str, queue: asyncio.Queue) -> tuple[bool, bool]:
        """The connection closed: (was it the desk's last, did one of its connections ask for
        cancel-on-disconnect), decided at once so only one closing connection sees "last"."""
        with self._lock:
            self._subs[desk_id] = {s for s in self._subs[desk_id] if s[1] is not queue}
            if self._subs[desk_id]:
                return False, False
            asked = desk_id in self._cancel_on_disconnect
            self._cancel_on_disconnect.discard(desk_id)
            return True, asked

    def subscribers(self, desk_id: str) -> int:
        with self._lock:
            return len(self._subs[desk_id])

    def _payload(self, event: ev.Event) -> dict:
        payload = event_json(event)
        who = self.identity(ev.rfq_id_of(event)) if self.identity is not None else None
        return masked(payload, *who) if who is not None else payload

    def sink(self, events: list[ev.Event]) -> None:
        """Hand a batch to the subscribers: one wake-up of each subscriber's event loop per
        batch (a mass quote is hundreds of events), the events in order."""
        batches: dict[tuple[asyncio.AbstractEventLoop, asyncio.Queue], list[dict]] = {}
        for event in events:
            desk = desk_of(event)
            if desk is None:
                continue
            with self._lock:
                subs = list(self._subs.get(desk, ()))
                if not subs and self._holding:
                    self._hold(desk, event)
                    continue
            if not subs:
                continue
            payload = self._payload(event)
            for sub in subs:
                batches.setdefault(sub, []).append(payload)
        for (loop, queue), payloads in batches.items():
            loop.call_soon_threadsafe(_offer_all, queue, payloads)

    def _hold(self, desk: str, event: ev.Event) -> None:
        held = self._held.setdefault(desk, [])
        if len(held) < MAX_BACKLOG // 2:
            held.append(self._payload(event))
        elif len(held) == MAX_BACKLOG // 2:
            held.append(
                {
                    "event": "Truncated",
                    "desk_id": desk,
                    "text": "more happened at start-up: read the RFQs back",
                }
            )
            log.warning("desk %s: start-up events beyond %d not kept", desk, MAX_BACKLOG // 2)


def _offer_all(queue: asyncio.Queue, payloads: list[dict]) -> None:
    for payload in payloads:
        if not _offer(queue, payload):
            return


def _offer(queue: asyncio.Queue, payload: dict) -> bool:
    """Queue ``payload``; False when the subscriber is too far behind and is being closed."""
    try:
        queue.put_nowait(payload)
    except asyncio.QueueFull:
        log.warning("desk stream subscriber fell %d events behind; closing it", MAX_BACKLOG)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(CLOSE)
        return False
    return True
