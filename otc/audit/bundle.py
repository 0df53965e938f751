"""Layout of a compliance export bundle and read access to one (directory or ``.tar``).

A bundle is a directory, or the same files in an uncompressed ``.tar`` (chosen by the output
name ending in ``.tar``)::

    manifest.json      signed: range, tree sizes, last entry hash, SHA-256 of every other file
    entries.jsonl      the exported entries, byte-for-byte as in the log (seq first_seq...)
    checkpoints.jsonl  every signed checkpoint with size in (prefix_size, checkpoint_size]
    proofs.json        the tree material around the range (see below)
    public_key.pem     the log's Ed25519 public key

``proofs.json`` lets a verifier recompute signed Merkle roots from a time-ranged slice::

    prefix     compact range of leaves [0, prefix_size): the O(log n) subtree hashes left of
               the range (prefix_size = first_seq - 1, or 0 for a range starting at seq 0)
    anchor     entry first_seq - 1 (the entry before the range), so the first exported
               entry's prev_hash link is checked and the range provably starts at ``from``
               (anchor ts < from)
    successor  entry last_seq + 1 when the log has one under the covering checkpoint: proves
               the range ends at ``to`` (successor ts >= to); absent only when the covering
               checkpoint ends right after the range
    suffix     compact range of the leaves after that, up to the covering checkpoint's size
    extends    optional consistency proof from an earlier bundle's final checkpoint

Streaming prefix + anchor + entries + successor + suffix through an RFC 6962 compact range
reproduces the root of every included checkpoint, so the slice is checked against signatures
made when the entries were written, not merely against the exporter's manifest signature.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "BUNDLE_FILES",
    "CHECKPOINTS",
    "ENTRIES",
    "MANIFEST",
    "MANIFEST_TYPE",
    "PROOFS",
    "PUBLIC_KEY",
    "BundleError",
    "BundleReader",
]

MANIFEST = "manifest.json"
ENTRIES = "entries.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
PROOFS = "proofs.json"
PUBLIC_KEY = "public_key.pem"
BUNDLE_FILES = (ENTRIES, CHECKPOINTS, PROOFS, PUBLIC_KEY)
MANIFEST_TYPE = "fixbridge.audit.manifest.v1"


class BundleError(Exception):
    """A bundle cannot be opened or lacks a file."""


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
