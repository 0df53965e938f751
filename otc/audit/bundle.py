"""Layout of a compliance export bundle, and the read access its verification needs.

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

from typing import BinaryIO, Protocol

__all__ = [
    "BUNDLE_FILES",
    "CHECKPOINTS",
    "ENTRIES",
    "MANIFEST",
    "MANIFEST_TYPE",
    "PROOFS",
    "PUBLIC_KEY",
    "BundleError",
    "BundleFiles",
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


class BundleFiles(Protocol):
    """Read access to the files of one bundle, wherever they are kept (the gateway reads a
    directory or a ``.tar``). Both methods raise :class:`BundleError` for a file the bundle
    lacks; ``open`` gives a binary file that is read line by line."""

    def open(self, name: str) -> BinaryIO: ...

    def read(self, name: str) -> bytes: ...
