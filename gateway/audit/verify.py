"""Verifying bundles on disk: a bundle directory or ``.tar`` read for :mod:`otc.audit.verify`.

``fixbridge audit verify`` and ``extends`` run these. The checks are the core's
(:func:`~otc.audit.verify.check_bundle`, :func:`~otc.audit.verify.check_extends`); this module
opens the bundle, hands its files over and turns a bundle that cannot even be read (missing,
not a tar, a damaged tar member) into a verdict rather than a crash.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from otc.audit.bundle import BundleError
from otc.audit.verify import ExtendsReport, Problem, VerifyReport, check_bundle, check_extends

__all__ = ["BundleReader", "prove_extends", "verify_bundle"]


class BundleReader:
    """Uniform access to the files of a bundle directory or ``.tar``."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._tar: tarfile.TarFile | None = None
        if self.path.is_dir():
            return
        if not self.path.exists():
            raise BundleError(f"bundle {self.path} does not exist")
        try:
            self._tar = tarfile.open(self.path, "r:")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(
                f"{self.path} is neither a bundle directory nor a tar: {exc}"
            ) from None

    def open(self, name: str) -> BinaryIO:
        if self._tar is None:
            try:
                return (self.path / name).open("rb")
            except FileNotFoundError:
                raise BundleError(f"bundle {self.path} has no {name}") from None
        try:
            member = self._tar.getmember(name)
        except KeyError:
            raise BundleError(f"bundle {self.path} has no {name}") from None
        f = self._tar.extractfile(member) if member.isfile() else None
        if f is None:
            raise BundleError(f"{name} in {self.path} is not a regular file")
        return f

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify_bundle(path: str | os.PathLike[str], expected_key_id: str | None = None) -> VerifyReport:
    """Verify a bundle (directory or .tar); the report's ``problem`` names the first bad item."""
    return _verify(path, expected_key_id, frozenset())


def _verify(
    path: str | os.PathLike[str], expected_key_id: str | None, want: frozenset[int]
) -> VerifyReport:
    report = VerifyReport(path=str(path))
    try:
        with BundleReader(path) as bundle:
            check_bundle(bundle, report, expected_key_id, want)
    # What opening or closing the bundle, or reading a tar member, raises: the same verdicts
    # check_bundle gives for what it meets while checking.
    except BundleError as exc:
        report.ok, report.problem = False, Problem(str(path), None, None, str(exc))
    except OSError as exc:
        report.ok = False
        report.problem = Problem(str(path), None, None, f"cannot read bundle: {exc}")
    except (ValueError, TypeError, KeyError, AttributeError, tarfile.TarError) as exc:
        report.ok = False
        report.problem = Problem(str(path), None, None, f"malformed bundle: {exc!r}")
    return report


def prove_extends(
    old_bundle: str | os.PathLike[str],
    new_bundle: str | os.PathLike[str],
    expected_key_id: str | None = None,
) -> ExtendsReport:
    """Check that the log in ``new_bundle`` is an append-only extension of ``old_bundle``'s.

    Both bundles are verified in full, the new one with the old one's key; then
    :func:`~otc.audit.verify.check_extends` looks for the old final checkpoint in the new
    bundle (``export_bundle(..., extends=old_bundle)`` puts a consistency proof there).
    """
    old = verify_bundle(old_bundle, expected_key_id)
    if not old.ok or old.final_checkpoint is None:
        return ExtendsReport(False, f"old bundle does not verify: {old.problem}")
    new = _verify(new_bundle, old.key_id, frozenset({old.final_checkpoint.size}))
    return check_extends(old, new, os.fspath(old_bundle))
