"""Offline verification of export bundles and of one bundle extending another.

:func:`check_bundle` needs nothing but the bundle's files, handed to it as
:class:`~otc.audit.bundle.BundleFiles` (``gateway.audit.verify`` reads them from a directory or
a ``.tar``). It checks, in this order: the manifest's signature (by the bundle's public key,
optionally pinned with ``expected_key_id``), the hashes of the small files, every checkpoint's
signature, then streams the entries: each line must be canonical, have the expected sequence
number, a correct payload hash, a timestamp inside the exported range and a ``prev_hash`` equal
to the previous entry's hash; prefix, anchor, entries, successor and suffix are folded into an
RFC 6962 compact range whose root must equal every included checkpoint's signed root. Finally
the entries file's hash is compared with the manifest.

Locating the first bad entry: a change to entry *k* breaks the link *k -> k+1*, while a
change to *k+1*'s own ``prev_hash`` breaks the same link; the two are told apart by whether
*k+1* is itself vouched for (by *k+2*'s ``prev_hash`` or, for the last entry, by the signed
manifest's ``last_entry_hash``). Missing, inserted and reordered lines show up as a wrong
sequence number at the first affected line; truncation as a torn last line or a short file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from otc.audit.bundle import (
    CHECKPOINTS,
    ENTRIES,
    MANIFEST,
    MANIFEST_TYPE,
    PROOFS,
    PUBLIC_KEY,
    BundleError,
    BundleFiles,
)
from otc.audit.checkpoint import Checkpoint, CheckpointError
from otc.audit.entry import GENESIS_PREV_HASH, Entry, EntryError, decode_entry
from otc.audit.merkle import CompactRange, ProofError, verify_consistency
from otc.audit.signing import SignatureError, key_id, public_key_from_pem, verify_document

__all__ = ["ExtendsReport", "Problem", "VerifyReport", "check_bundle", "check_extends"]


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong and where: the file, its 1-based line and the entry's sequence number."""

    file: str
    line: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    path: str
    ok: bool = False
    problem: Problem | None = None
    key_id: str | None = None
    first_seq: int | None = None
    entries: int = 0  # entries of entries.jsonl checked
    checkpoints: int = 0  # checkpoints whose signature and root were checked
    final_checkpoint: Checkpoint | None = None
    range_from: str | None = None
    range_to: str | None = None
    roots: dict[int, bytes] = field(default_factory=dict, repr=False)
    extends: tuple[int, bytes] | None = None  # (old size, old root) proven consistent
    # ``audit.interrupted`` entries: the trail could not make entries durable for a while and
    # wrote the held ones later, in order (their payload with the entry's own seq)
    interruptions: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.ok:
            return f"FAILED {self.path}: {self.problem}"
        final = self.final_checkpoint
        assert final is not None
        span = (
            f"seq {self.first_seq}..{self.first_seq + self.entries - 1}"
            if self.entries and self.first_seq is not None
            else "no entries"
        )
        text = (
            f"OK {self.path}: {self.entries} entries ({span}), {self.checkpoints} signed "
            f"checkpoints, tree size {final.size} root {final.root.hex()}, key {self.key_id}"
        )
        for i in self.interruptions:
            text += (
                f"\ninterrupted: entries from seq {i.get('from_seq')} were held "
                f"{i.get('seconds')} s ({i.get('since')} .. {i.get('until')}): {i.get('error')}"
                f" (recorded at seq {i.get('seq')})"
            )
        return text


class _Fail(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _fail(file: str, line: int | None, seq: int | None, message: str) -> _Fail:
    return _Fail(Problem(file, line, seq, message))


def check_bundle(
    files: BundleFiles,
    report: VerifyReport,
    expected_key_id: str | None = None,
    want: frozenset[int] = frozenset(),
) -> VerifyReport:
    """Verify the bundle ``files`` reads, filling in ``report`` (whose ``path`` names the bundle
    in problems): ``ok``, or the ``problem`` naming the first bad item. The root of every tree
    size in ``want`` that the entry stream passes through is kept in ``report.roots``."""
    path = report.path
    try:
        _Verifier(files, report, expected_key_id, want).run()
        report.ok = True
    except _Fail as failure:
        report.problem = failure.problem
    except BundleError as exc:
        report.problem = Problem(path, None, None, str(exc))
    except OSError as exc:
        report.problem = Problem(path, None, None, f"cannot read bundle: {exc}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # Structures the checks above did not anticipate: still a verdict, never a crash.
        report.problem = Problem(path, None, None, f"malformed bundle: {exc!r}")
    return report


def _field(doc: Any, dotted: str, kind: type | tuple[type, ...], file: str = MANIFEST) -> Any:
    value = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise _fail(file, None, None, f"field {dotted!r} is missing")
        value = value[part]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _fail(file, None, None, f"field {dotted!r} has the wrong type")
    return value


def _hashes(values: Any, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise _fail(PROOFS, None, None, f"{what} is not a list of hashes")
    out = []
    for value in values:
        try:
            raw = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise _fail(PROOFS, None, None, f"{what} holds a value that is not a 32-byte hex hash")
        out.append(raw)
    return out


def _utf8(text: str) -> bytes:
    """Bytes of a line carried inside JSON; lone surrogates survive to fail UTF-8 decoding."""
    return text.encode("utf-8", "surrogatepass")


@dataclass
class _Element:
    """One entry in the verified stream: anchor, an exported line, or the successor."""

    file: str
    line: int | None
    seq: int
    entry: Entry


class _Verifier:
    def __init__(
        self,
        bundle: BundleFiles,
        report: VerifyReport,
        expected_key_id: str | None,
        want: frozenset[int],
    ):
        self.bundle, self.report, self.expected_key_id, self.want = (
            bundle,
            report,
            expected_key_id,
            want,
        )

    # -- manifest, key, small files ----------------------------------------------------------

    def run(self) -> None:
        manifest, public_key = self._manifest()
        files = _field(manifest, "files", dict)
        self.first = _field(manifest, "range.first_seq", int)
        self.count = _field(manifest, "range.count", int)
        self.frm = _field(manifest, "range.from", (str, type(None)))
        self.to = _field(manifest, "range.to", (str, type(None)))
        self.prefix_size = _field(manifest, "tree.prefix_size", int)
        self.size = _field(manifest, "tree.size", int)
        self.root = _field(manifest, "tree.root", str)
        self.last_hash = _field(manifest, "last_entry_hash", (str, type(None)))
        self.files = files
        self.report.first_seq, self.report.range_from, self.report.range_to = (
            self.first,
            self.frm,
            self.to,
        )
        if self.first < 0 or self.count < 0 or self.first + self.count > self.size:
            raise _fail(MANIFEST, None, None, "range does not fit inside the tree size")
        expected_prefix = self.first - 1 if self.first > 0 else 0
        if self.prefix_size != expected_prefix:
            raise _fail(MANIFEST, None, None, f"prefix_size should be {expected_prefix}")
        checkpoints = self._checkpoints(public_key, _field(manifest, "checkpoints", int))
        proofs = self._proofs()
        self._entries(checkpoints, proofs)

    def _check_file(self, name: str, data: bytes) -> None:
        record = self.files.get(name)
        if not isinstance(record, dict):
            raise _fail(MANIFEST, None, None, f"no record for {name}")
        if record.get("sha256") != sha256(data).hexdigest() or record.get("bytes") != len(data):
            raise _fail(name, None, None, "file differs from the SHA-256 recorded in the manifest")

    def _manifest(self) -> tuple[dict[str, Any], Ed25519PublicKey]:
        try:
            manifest = json.loads(self.bundle.read(MANIFEST))
        except ValueError as exc:
            raise _fail(MANIFEST, None, None, f"not valid JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise _fail(MANIFEST, None, None, "not a JSON object")
        pem = self.bundle.read(PUBLIC_KEY)
        try:
            public_key = public_key_from_pem(pem)
        except SignatureError as exc:
            raise _fail(PUBLIC_KEY, None, None, str(exc)) from None
        self.report.key_id = kid = key_id(public_key)
        if self.expected_key_id is not None and kid != self.expected_key_id:
            raise _fail(
                PUBLIC_KEY, None, None, f"bundle key is {kid}, expected {self.expected_key_id}"
            )
        try:
            verify_document(public_key, manifest, MANIFEST_TYPE)
        except SignatureError as exc:
            raise _fail(MANIFEST, None, None, f"manifest signature: {exc}") from None
        self.files = _field(manifest, "files", dict)
        self._check_file(PUBLIC_KEY, pem)
        return manifest, public_key

    def _checkpoints(self, public_key: Ed25519PublicKey, expected: int) -> list[Checkpoint]:
        data = self.bundle.read(CHECKPOINTS)
        checkpoints: list[Checkpoint] = []
        lines = data.split(b"\n")
        if lines[-1] != b"":
            raise _fail(CHECKPOINTS, len(lines), None, "last line has no newline: truncated")
        for number, line in enumerate(lines[:-1], start=1):
            try:
                checkpoint = Checkpoint.from_line(line)
                checkpoint.verify(public_key)
            except CheckpointError as exc:
                raise _fail(CHECKPOINTS, number, None, str(exc)) from None
            if checkpoints and checkpoint.size <= checkpoints[-1].size:
                raise _fail(CHECKPOINTS, number, None, "checkpoint sizes do not increase")
            if checkpoints and checkpoint.ts < checkpoints[-1].ts:
                raise _fail(CHECKPOINTS, number, None, "checkpoint time goes backwards")
            if not self.prefix_size < checkpoint.size <= self.size:
                raise _fail(CHECKPOINTS, number, None, "checkpoint outside the bundle's tree")
            checkpoints.append(checkpoint)
        if len(checkpoints) != expected:
            raise _fail(
                CHECKPOINTS, None, None, f"{len(checkpoints)} checkpoints, manifest says {expected}"
            )
        if not checkpoints or checkpoints[-1].size != self.size:
            raise _fail(CHECKPOINTS, None, None, f"no checkpoint at tree size {self.size}")
        if checkpoints[-1].root.hex() != self.root:
            raise _fail(MANIFEST, None, None, "tree root differs from the final checkpoint's")
        self._check_file(CHECKPOINTS, data)
        return checkpoints

    def _proofs(self) -> dict[str, Any]:
        data = self.bundle.read(PROOFS)
        self._check_file(PROOFS, data)
        try:
            proofs = json.loads(data)
        except ValueError as exc:
            raise _fail(PROOFS, None, None, f"not valid JSON: {exc}") from None
        if not isinstance(proofs, dict):
            raise _fail(PROOFS, None, None, "not a JSON object")
        return proofs

    # -- the entry stream --------------------------------------------------------------------

    def _decode(self, file: str, line: int | None, seq: int, raw: bytes, label: str) -> Entry:
        try:
            entry = decode_entry(raw)
        except EntryError as exc:
            raise _fail(file, line, seq, f"{label}{exc}") from None
        if entry.seq != seq:
            raise _fail(
                file,
                line,
                seq,
                f"{label}expected seq {seq}, found seq {entry.seq}: "
                "an entry is missing, inserted or out of order here",
            )
        return entry

    def _elements(self, proofs: dict[str, Any]) -> Iterator[_Element]:
        anchor = proofs.get("anchor")
        if (anchor is not None) != (self.first > 0) or not isinstance(anchor, str | None):
            raise _fail(PROOFS, None, None, "anchor must be present exactly when first_seq > 0")
        if anchor is not None:
            entry = self._decode(PROOFS, None, self.first - 1, _utf8(anchor), "anchor: ")
            if self.frm is None or entry.ts >= self.frm:
                raise _fail(
                    PROOFS,
                    None,
                    entry.seq,
                    "anchor: the entry before the range is "
                    "not before the range's start: the range start is not proven",
                )
            yield _Element(PROOFS, None, entry.seq, entry)
        digest = sha256()
        seq = self.first
        number = 0
        with self.bundle.open(ENTRIES) as f:
            for number, raw in enumerate(f, start=1):
                digest.update(raw)
                if number > self.count:
                    raise _fail(
                        ENTRIES, number, seq, f"more lines than the {self.count} in the manifest"
                    )
                if not raw.endswith(b"\n"):
                    raise _fail(ENTRIES, number, seq, "line has no newline: file truncated")
                entry = self._decode(ENTRIES, number, seq, raw[:-1], "")
                if self.frm is not None and entry.ts < self.frm:
                    raise _fail(ENTRIES, number, seq, f"ts {entry.ts} is before range start")
                if self.to is not None and entry.ts >= self.to:
                    raise _fail(ENTRIES, number, seq, f"ts {entry.ts} is at or after range end")
                yield _Element(ENTRIES, number, seq, entry)
                seq += 1
        if number < self.count:
            raise _fail(
                ENTRIES,
                number + 1,
                seq,
                f"file ends after {number} entries, the manifest lists {self.count}: truncated",
            )
        self.entries_digest = digest.hexdigest()
        successor = proofs.get("successor")
        if not isinstance(successor, str | None):
            raise _fail(PROOFS, None, None, "successor must be an entry line or null")
        if successor is not None:
            entry = self._decode(PROOFS, None, seq, _utf8(successor), "successor: ")
            if self.to is None or entry.ts < self.to:
                raise _fail(
                    PROOFS,
                    None,
                    seq,
                    "successor: the entry after the range is not "
                    "after the range's end: the range end is not proven",
                )
            yield _Element(PROOFS, None, seq, entry)

    def _entries(self, checkpoints: list[Checkpoint], proofs: dict[str, Any]) -> None:
        prefix = _field(proofs, "prefix", dict, PROOFS)
        if _field(prefix, "size", int, PROOFS) != self.prefix_size:
            raise _fail(PROOFS, None, None, "prefix size differs from the manifest")
        try:
            tree = CompactRange(0, self.prefix_size, _hashes(prefix.get("hashes"), "prefix"))
        except ProofError as exc:
            raise _fail(PROOFS, None, None, f"prefix: {exc}") from None
        by_size = {c.size: c for c in checkpoints}
        report = self.report
        root_problem: Problem | None = None
        ts_problem: Problem | None = None
        verified_to = self.prefix_size
        if self.prefix_size in self.want:
            report.roots[self.prefix_size] = tree.root()

        previous: _Element | None = None
        broken: tuple[_Element, _Element] | None = None  # (k-1, k) with a broken link
        last_in_entries: _Element | None = None
        for element in self._elements(proofs):
            entry = element.entry
            if broken is not None:
                before, suspect = broken
                # ``suspect`` is intact iff the element after it links to it.
                culprit = before if entry.prev_hash == suspect.entry.entry_hash.hex() else suspect
                raise self._altered(culprit)
            if previous is not None:
                if entry.prev_hash != previous.entry.entry_hash.hex():
                    broken = (previous, element)
                elif entry.ts < previous.entry.ts and ts_problem is None:
                    ts_problem = Problem(
                        element.file, element.line, element.seq, "ts goes backwards"
                    )
            elif element.seq == 0 and entry.prev_hash != GENESIS_PREV_HASH:
                raise _fail(element.file, element.line, 0, "prev_hash of entry 0 is not zeros")
            tree.append(entry.entry_hash)
            if element.file == ENTRIES:
                report.entries += 1
                last_in_entries = element
                if entry.kind == "audit.interrupted" and isinstance(entry.payload, dict):
                    report.interruptions.append({**entry.payload, "seq": entry.seq})
            checkpoint = by_size.get(tree.end)
            if checkpoint is not None:
                root = tree.root()
                if root == checkpoint.root:
                    report.checkpoints += 1
                    verified_to = tree.end
                elif root_problem is None:
                    root_problem = self._root_problem(verified_to, tree.end)
            if tree.end in self.want:
                report.roots[tree.end] = tree.root()
            previous = element

        manifest_hash_ok = (
            last_in_entries is not None and last_in_entries.entry.entry_hash.hex() == self.last_hash
        )
        if broken is not None:
            before, suspect = broken
            if suspect.file == ENTRIES:  # the last exported line: the manifest vouches for it
                raise self._altered(before if manifest_hash_ok else suspect)
            # ``suspect`` is the successor; ``before`` is the last exported entry (or anchor).
            raise self._altered(suspect if manifest_hash_ok or before.file != ENTRIES else before)
        if last_in_entries is not None and not manifest_hash_ok:
            raise self._altered(last_in_entries)
        if last_in_entries is None and self.last_hash is not None:
            raise _fail(MANIFEST, None, None, "last_entry_hash given for an empty range")

        suffix = _field(proofs, "suffix", dict, PROOFS)
        begin = _field(suffix, "begin", int, PROOFS)
        end = _field(suffix, "end", int, PROOFS)
        if begin != tree.end or end != self.size:
            raise _fail(
                PROOFS,
                None,
                None,
                f"suffix must cover [{tree.end}, {self.size}), not [{begin}, {end})",
            )
        if proofs.get("successor") is None and end != begin:
            raise _fail(
                PROOFS,
                None,
                None,
                "no successor entry, yet the covering checkpoint extends past "
                "the range: the range end is not proven",
            )
        for size in by_size:
            if begin < size < end:
                raise _fail(CHECKPOINTS, None, None, f"checkpoint {size} falls in the suffix")
        if end > begin:
            try:
                tree.extend(CompactRange(begin, end, _hashes(suffix.get("hashes"), "suffix")))
            except ProofError as exc:
                raise _fail(PROOFS, None, None, f"suffix: {exc}") from None
            final = by_size[end]
            if tree.root() == final.root:
                report.checkpoints += 1
            elif root_problem is None:
                root_problem = self._root_problem(verified_to, end)
        elif _hashes(suffix.get("hashes"), "suffix"):
            raise _fail(PROOFS, None, None, "suffix of an empty range must have no hashes")
        if root_problem is not None:
            raise _Fail(root_problem)
        if ts_problem is not None:
            raise _Fail(ts_problem)
        record = self.files.get(ENTRIES)
        if not isinstance(record, dict) or record.get("sha256") != self.entries_digest:
            raise _fail(ENTRIES, None, None, "file differs from the SHA-256 in the manifest")
        report.final_checkpoint = by_size[self.size]
        report.roots[self.size] = by_size[self.size].root
        for checkpoint in checkpoints:
            report.roots[checkpoint.size] = checkpoint.root
        self._extends(proofs.get("extends"), by_size[self.size])

    def _altered(self, element: _Element) -> _Fail:
        if element.file == ENTRIES:
            message = (
                "entry was altered: its hash no longer matches the prev_hash that the next "
                "entry (or the signed manifest) recorded for it"
            )
        else:
            which = "anchor" if element.seq < self.first else "successor"
            message = f"{which} entry was altered: its hash does not match the chain"
        return _fail(element.file, element.line, element.seq, message)

    def _root_problem(self, verified_to: int, size: int) -> Problem:
        first_bad = max(verified_to, self.first)
        line = first_bad - self.first + 1 if first_bad < self.first + self.count else None
        return Problem(
            ENTRIES if line else PROOFS,
            line,
            first_bad,
            f"Merkle root rebuilt for checkpoint {size} differs from its signed root: entries "
            f"{verified_to}..{size - 1} or the proof material were altered",
        )

    def _extends(self, doc: Any, final: Checkpoint) -> None:
        if doc is None:
            return
        old_size = _field(doc, "old_size", int, PROOFS)
        old_root = _hashes([_field(doc, "old_root", str, PROOFS)], "extends.old_root")[0]
        proof = _hashes(doc.get("proof"), "extends.proof")
        try:
            verify_consistency(old_size, final.size, old_root, final.root, proof)
        except ProofError as exc:
            raise _fail(PROOFS, None, None, f"extends: {exc}") from None
        self.report.extends = (old_size, old_root)


@dataclass(frozen=True, slots=True)
class ExtendsReport:
    ok: bool
    message: str
    old_size: int | None = None
    new_size: int | None = None

    def __str__(self) -> str:
        return ("OK: " if self.ok else "FAILED: ") + self.message


def check_extends(old: VerifyReport, new: VerifyReport, old_name: str) -> ExtendsReport:
    """Whether the log in bundle ``new`` is an append-only extension of bundle ``old``'s.

    ``old`` must have verified; ``new`` is its verification with ``old``'s key pinned and the
    old final checkpoint's size in ``want``. That checkpoint (size m) must be reproduced inside
    the new bundle: either m lies in the new bundle's verified stream (its root is recomputed
    from the new entries), or the new bundle carries a consistency proof from exactly that
    checkpoint (an export made with ``extends=`` the old bundle, named ``old_name``).
    """
    assert old.final_checkpoint is not None
    m, old_root = old.final_checkpoint.size, old.final_checkpoint.root
    if not new.ok or new.final_checkpoint is None:
        return ExtendsReport(False, f"new bundle does not verify: {new.problem}", m)
    n = new.final_checkpoint.size
    if m > n:
        return ExtendsReport(False, f"old tree size {m} is larger than new tree size {n}", m, n)
    if m in new.roots:
        if new.roots[m] != old_root:
            return ExtendsReport(
                False, f"history differs: the new bundle's tree at size {m} has another root", m, n
            )
        how = "its root recomputed from the new bundle's entries matches"
        return ExtendsReport(True, f"tree size {n} extends tree size {m}: {how}", m, n)
    if new.extends is not None and new.extends[0] == m:
        if new.extends[1] != old_root:
            return ExtendsReport(
                False, "history differs: the consistency proof starts from another root", m, n
            )
        return ExtendsReport(
            True, f"tree size {n} extends tree size {m}: RFC 6962 consistency proof verified", m, n
        )
    return ExtendsReport(
        False,
        f"the new bundle neither covers tree size {m} nor proves consistency from it; "
        f"re-export with extends={old_name!r}",
        m,
        n,
    )
