"""A graceful stop in named steps under one time budget (``gateway.drain_seconds``).

:class:`Drain` runs the steps :meth:`gateway.app.Gateway.stop` lists, in order, each given the
seconds left. A step that returns ``False`` (or raises) did not finish: a required one makes the
drain fail (the process exits 1), the others are logged as warnings. If the budget runs out
while a step blocks, a watchdog logs the step and every step not reached, and ends the process
with exit code 1: a drain never hangs a shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

log = logging.getLogger("fixbridge")

EXIT_DRAIN_TIMEOUT = 1
GRACE = 0.5  # past the budget, before the watchdog gives up on a step that ignores its timeout


class Step:
    """``run(seconds_left)`` returns ``False`` if it did not finish; ``required``: the drain
    fails if it does not."""

    __slots__ = ("name", "required", "run")

    def __init__(self, name: str, run: Callable[[float], bool | None], required: bool = False):
        self.name, self.run, self.required = name, run, required


class Drain:
    def __init__(self, budget: float, exit: Callable[[int], None] = os._exit) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.deadline = self.started + budget
        self.failed: list[str] = []
        self.warnings: list[str] = []
        self._exit = exit
        self._done = threading.Event()
        self._current = 0
        self._steps: Sequence[Step] = ()

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def run(self, steps: Sequence[Step]) -> bool:
        """Run ``steps`` in order; whether every required one finished within the budget."""
        self._steps = steps
        threading.Thread(target=self._watch, name="drain-watchdog", daemon=True).start()
        for index, step in enumerate(steps):
            self._current = index
            try:
                ok = step.run(self.left()) is not False
            except Exception:
                log.exception("drain: %s failed", step.name)
                ok = False
            if not ok:
                (self.failed if step.required else self.warnings).append(step.name)
                log.log(
                    logging.ERROR if step.required else logging.WARNING,
                    "drain: %s did not finish",
                    step.name,
                )
        self._done.set()
        took = time.monotonic() - self.started
        if self.failed:
            log.error("drain: not finished in %.1f s: %s", took, ", ".join(self.failed))
        else:
            log.info("drain: done in %.1f s", took)
        return not self.failed

    def _watch(self) -> None:
        if self._done.wait(self.left() + GRACE):
            return
        current = self._steps[self._current].name
        rest = [s.name for s in self._steps[self._current + 1 :]]
        line = (
            f"drain: out of time ({self.budget:g} s, gateway.drain_seconds) while waiting "
            f"for: {current}; not done: {', '.join(rest) or 'nothing else'}"
        )
        worker = threading.Thread(target=log.error, args=(line,), daemon=True)
        worker.start()
        worker.join(0.2)
        if worker.is_alive():  # a blocked step holds a logging lock: say it on stderr directly
            stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
            os.write(2, f"{stamp} ERROR fixbridge: {line}\n".encode())
        self._exit(EXIT_DRAIN_TIMEOUT)
