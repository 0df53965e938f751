"""Process memory settings for ``fixbridge run``: what each thread costs stays small.

glibc gives every thread that allocates its own malloc arena (up to 8 per core), and memory
freed into one arena is not reused by another: with a thread per connection and QuickFIX's,
database, audit and HTTP threads, resident memory grows by arenas that are mostly free.
Python threads also reserve 8 MiB stacks by default where they use a few hundred KiB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

log = logging.getLogger("fixbridge")

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2
THREAD_STACK = 1024 * 1024  # bytes: ample for the gateway's threads; untouched pages cost no RSS


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on (the equivalent of
    ``MALLOC_ARENA_MAX``, which is read too early to set from Python). An explicit
    ``MALLOC_ARENA_MAX`` in the environment wins. False where the C library is not glibc."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return True
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_ARENA_MAX, arenas))
    if ok:
        os.environ["MALLOC_ARENA_MAX"] = str(arenas)  # for child processes
    return ok


def small_thread_stacks(size: int = THREAD_STACK) -> None:
    """Python threads started from now on get ``size``-byte stacks."""
    threading.stack_size(size)


def configure() -> None:
    """Both, before the gateway starts any thread."""
    arenas = limit_arenas()
    small_thread_stacks()
    log.debug("malloc arenas capped: %s; thread stacks %d KiB", arenas, THREAD_STACK // 1024)
