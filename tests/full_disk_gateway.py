"""``fixbridge run`` whose audit log sits on a disk that fills up on demand, for the tests.

While ``<data_dir>/audit-disk-full`` exists, every write of the audit log puts part of its bytes
in the file and then fails with ENOSPC, as a full disk does; once the file is removed, writes
succeed again. Only the audit log's writes go through it (its ``write`` parameter, passed in
through :class:`gateway.app.Parts`); the FIX store, the database and everything else write
normally. Run as ``python -m tests.full_disk_gateway run --config PATH``.
"""

from __future__ import annotations

import errno
import os
import sys
from functools import partial
from pathlib import Path

from gateway.app import Parts
from gateway.audit.feed import Auditor
from gateway.cli import cmd_run
from gateway.cli import parser as fixbridge_parser
from gateway.config import load_config

FULL = "audit-disk-full"


class SwitchableDisk:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def write(self, fd: int, data: bytes) -> None:
        if self.marker.exists():
            os.write(fd, data[: max(1, len(data) // 2)])  # part of a line reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    args = fixbridge_parser().parse_args(argv)
    data_dir = load_config(Path(args.config)).gateway.data_dir
    disk = SwitchableDisk(data_dir / FULL)
    return cmd_run(args, Parts(auditor=partial(Auditor, write=disk.write)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
