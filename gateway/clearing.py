"""The clearing worker: a thread that runs the outbox dispatcher, which delivers captured
trades' clearing messages, retries them and applies the clearinghouse's answers.

The outbox state machine, renderers and senders live in ``otc.clearing``; the outbox table in
:mod:`gateway.store.clearing`.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("fixbridge.clearing")


class ClearingWorker:
    """Runs the dispatcher every ``interval`` seconds on its own thread."""

    def __init__(self, dispatcher, interval: float = 0.2, on_change=None) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self.on_change = on_change or (lambda msg: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clearing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for msg in self.dispatcher.run_once():
                    self.on_change(msg)
            except Exception:  # keep delivering; the failure is logged and retried next tick
                log.exception("clearing dispatcher pass failed")
