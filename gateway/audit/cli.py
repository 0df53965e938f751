"""``fixbridge audit keygen|export|verify|extends`` as plain functions returning exit codes.

Argument parsing lives in ``gateway/cli.py``; these functions do the work, print results to
stdout, problems and progress to stderr, and return 0 on success, 1 on any failure.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

from gateway.audit.export import ExportError, export_bundle
from gateway.audit.keys import (
    PUBLIC_KEY_FILE,
    AuditKeyError,
    generate_signing_key,
    load_public_key,
)
from gateway.audit.store import LogCorruptError
from gateway.audit.verify import prove_extends, verify_bundle
from otc.audit.signing import key_id as _key_id

__all__ = ["cmd_export", "cmd_extends", "cmd_keygen", "cmd_verify", "parse_time"]


def parse_time(text: str) -> datetime:
    """A command-line time: ISO 8601 with an offset or ``Z``, or a bare date (UTC midnight).

    Usable as an argparse ``type=``; raises ``ValueError`` naming the accepted forms.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            f"time {text!r} needs a UTC offset: use e.g. 2024-05-01T09:30:00Z, "
            "2024-05-01T11:30:00+02:00 or a date 2024-05-01 (UTC midnight)"
        )
    return parsed.astimezone(UTC)


def cmd_keygen(data_dir: str | os.PathLike[str], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        private = generate_signing_key(data_dir)
    except (AuditKeyError, OSError) as exc:
        print(f"fixbridge audit keygen: {exc}", file=sys.stderr)
        return 1
    public = private.parent / PUBLIC_KEY_FILE
    print(f"private key: {private} (mode 0600, keep it out of version control)", file=out)
    print(f"public key:  {public} (key id {_key_id(load_public_key(public))})", file=out)
    return 0


class _StderrProgress:
    """Prints export progress about twice a second, so long exports show they are alive."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.5:
            return
        self._last = now
        percent = 100.0 * done / total if total else 100.0
        print(
            f"\rexport: {done >> 20} / {total >> 20} MiB ({percent:5.1f}%)",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if done >= total:
            print(file=sys.stderr)


def cmd_export(
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    frm: datetime | str | None = None,
    to: datetime | str | None = None,
    *,
    extends: str | os.PathLike[str] | None = None,
    stdout: TextIO | None = None,
) -> int:
    stdout = stdout or sys.stdout
    try:
        frm_dt = parse_time(frm) if isinstance(frm, str) else frm
        to_dt = parse_time(to) if isinstance(to, str) else to
        summary = export_bundle(
            data_dir, out, frm_dt, to_dt, progress=_StderrProgress(), extends=extends
        )
    except (ValueError, ExportError, AuditKeyError, LogCorruptError, OSError) as exc:
        print(f"fixbridge audit export: {exc}", file=sys.stderr)
        return 1
    last = summary.first_seq + summary.count - 1
    span = f"seq {summary.first_seq}..{last}" if summary.count else "no entries in range"
    print(
        f"wrote {summary.path}: {summary.count} entries ({span}), {summary.checkpoints} "
        f"checkpoints, tree size {summary.tree_size} root {summary.root}, key {summary.key_id}",
        file=stdout,
    )
    return 0


def cmd_verify(
    bundle: str | os.PathLike[str], *, key_id: str | None = None, stdout: TextIO | None = None
) -> int:
    """Verify a bundle; on failure print the first bad entry (file, line, seq, problem)."""
    report = verify_bundle(Path(bundle), expected_key_id=key_id)
    print(report, file=(stdout or sys.stdout) if report.ok else sys.stderr)
    return 0 if report.ok else 1


def cmd_extends(
    old_bundle: str | os.PathLike[str],
    new_bundle: str | os.PathLike[str],
    *,
    key_id: str | None = None,
    stdout: TextIO | None = None,
) -> int:
    report = prove_extends(old_bundle, new_bundle, expected_key_id=key_id)
    print(report, file=(stdout or sys.stdout) if report.ok else sys.stderr)
    return 0 if report.ok else 1
