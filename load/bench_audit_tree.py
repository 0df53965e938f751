"""Audit tree benchmark: memory of a process holding a big AuditLog, and the time to reopen it,
with the Merkle tree in memory versus in files (``tree/``).

    python -m load.bench_audit_tree [--entries 1000000] [--work-dir DIR]

One run writes a log of ``--entries`` entries, then opens it in fresh child processes, each
reporting its resident memory before and after ``AuditLog.open`` and how long the open took:

* memory: the tree in memory (``tree_files=False``): every entry re-hashed, 64 bytes each kept;
* files, rebuilt: ``tree/`` deleted first, so the files are written from every entry;
* files, reused: ``tree/`` as the previous open left it: only the tail is hashed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from gateway.audit.keys import generate_signing_key
from gateway.audit.log import AuditLog
from gateway.audit.tree_files import TREE_DIR
from load.bench_audit import payload

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from gateway.audit.log import AuditLog

    def rss_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    before = rss_kib()
    began = time.perf_counter()
    log = AuditLog.open(sys.argv[1], tree_files=sys.argv[2] == "files")
    seconds = time.perf_counter() - began
    proof = log.inclusion_proof(log.size // 3, log.size)
    after = rss_kib()
    print(json.dumps({"before_kib": before, "after_kib": after, "open_s": seconds,
                      "size": log.size, "proof": len(proof), **log.opened}))
    log.close()
    """
)


def _fill(directory: Path, entries: int) -> None:
    generate_signing_key(directory)
    with AuditLog.open(directory, checkpoint_every=10_000, tree_files=False) as log:
        pending = None
        for i in range(entries):
            pending = log.append_nowait("rfq.state", "desk", payload(i))
        if pending is not None:
            pending.wait()


def _open_in_child(directory: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(directory), mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _show(name: str, r: dict[str, float]) -> None:
    grown = (r["after_kib"] - r["before_kib"]) / 1024
    print(
        f"{name:<18} open {r['open_s']:7.2f} s   RSS {r['after_kib'] / 1024:7.1f} MiB "
        f"(+{grown:6.1f} MiB for the log)   hashed {int(r['hashed']):>9,} "
        f"reused {int(r['reused']):>9,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-audit-tree-", dir=args.work_dir))
    try:
        directory = work / "audit"
        _fill(directory, args.entries)
        print(f"audit log of {args.entries:,} entries in {directory}")
        _show("memory (before)", _open_in_child(directory, "memory"))
        shutil.rmtree(directory / TREE_DIR, ignore_errors=True)
        _show("files, rebuilt", _open_in_child(directory, "files"))
        _show("files, reused", _open_in_child(directory, "files"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
