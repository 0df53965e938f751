"""Durability on disk: the one helper every file writer at the edge uses."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries durable: after a file is created, renamed or removed in it,
    the file's own fsync is not enough for the name to survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
