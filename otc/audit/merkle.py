"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification. Pure: no I/O.

* leaf hash ``SHA-256(0x00 || data)``, interior node ``SHA-256(0x01 || left || right)``, empty
  tree ``SHA-256("")``; a tree of ``n`` leaves splits at the largest power of two below ``n``
  (RFC 6962 §2.1), so the shape of a prefix never changes as the log grows.
* :class:`CompactRange` is the minimal list of perfect subtrees covering ``[begin, end)``. A
  range starting at 0 is the log's *frontier*: appending is amortised O(1) hashes and the root
  is O(log n). Verifiers stream leaves through one; bundles ship the frontiers of the parts of
  the tree they leave out.
* :class:`MerkleTree` keeps every perfect subtree hash (2 x 32 bytes per leaf) so inclusion and
  consistency proofs for any past tree size cost O(log n) lookups. Where those hashes live is a
  :class:`LevelStore` the caller provides (default :class:`MemoryLevels`, packed in memory), so
  an edge can keep them in files and off the heap.
* :func:`verify_inclusion` and :func:`verify_consistency` are the RFC 9162 §2.1.3.2 / §2.1.4.2
  algorithms, independent of the generators.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "LevelStore",
    "MemoryLevels",
    "MerkleTree",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "range_shape",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()


class ProofError(ValueError):
    """A proof or range is malformed or does not match the claimed root."""


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2): where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def range_shape(begin: int, end: int) -> list[int]:
    """Levels (subtree height) of the minimal aligned perfect subtrees covering ``[begin, end)``,
    left to right. ``range_shape(0, n)`` has one entry per set bit of ``n``."""
    if not 0 <= begin <= end:
        raise ProofError(f"bad range [{begin}, {end})")
    levels: list[int] = []
    pos = begin
    while pos < end:
        size = (pos & -pos) if pos else 1 << (end.bit_length())
        while pos + size > end:
            size >>= 1
        levels.append(size.bit_length() - 1)
        pos += size
    return levels


class CompactRange:
    """Perfect-subtree hashes covering the leaves ``[begin, end)`` of a tree, left to right."""

    __slots__ = ("begin", "end", "_hashes", "_levels")

    def __init__(self, begin: int = 0, end: int | None = None, hashes: Sequence[bytes] = ()):
        end = begin if end is None else end
        levels = range_shape(begin, end)
        if len(hashes) != len(levels):
            raise ProofError(
                f"compact range [{begin}, {end}) needs {len(levels)} hashes, got {len(hashes)}"
            )
        for h in hashes:
            _check_hash(h, "compact range hash")
        self.begin = begin
        self.end = end
        self._hashes = list(hashes)
        self._levels = levels

    @property
    def hashes(self) -> list[bytes]:
        return list(self._hashes)

    def copy(self) -> CompactRange:
        other = CompactRange.__new__(CompactRange)
        other.begin, other.end = self.begin, self.end
        other._hashes, other._levels = list(self._hashes), list(self._levels)
        return other

    def append(self, leaf: bytes) -> None:
        """Add the hash of leaf number ``end``."""
        hashes, levels = self._hashes, self._levels
        hashes.append(leaf)
        levels.append(0)
        self.end = end = self.end + 1
        # Merge while the two rightmost nodes are siblings; the left one then starts at an even
        # node index of its level, i.e. ``end`` has the bit for that level clear after it.
        level = 0
        while len(levels) >= 2 and levels[-2] == level and (end >> level) & 1 == 0:
            right = hashes.pop()
            levels.pop()
            hashes[-1] = sha256(b"\x01" + hashes[-1] + right).digest()
            levels[-1] = level = level + 1

    def extend(self, other: CompactRange) -> None:
        """Append the adjacent range ``other`` (which must start where this one ends)."""
        if other.begin != self.end:
            raise ProofError(f"range [{other.begin}, {other.end}) does not start at {self.end}")
        for level, h in zip(other._levels, other._hashes, strict=True):
            self._hashes.append(h)
            self._levels.append(level)
            self.end += 1 << level
            while (
                len(self._levels) >= 2
                and self._levels[-2] == self._levels[-1]
                and (self.end >> self._levels[-1]) & 1 == 0
            ):
                right = self._hashes.pop()
                lvl = self._levels.pop()
                self._hashes[-1] = node_hash(self._hashes[-1], right)
                self._levels[-1] = lvl + 1

    def root(self) -> bytes:
        """RFC 6962 root of the tree of size ``end`` (only for ranges starting at 0)."""
        if self.begin != 0:
            raise ProofError("only a range starting at leaf 0 has a tree root")
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            acc = sha256(b"\x01" + h + acc).digest()
        return acc


class LevelStore(Protocol):
    """Where a :class:`MerkleTree` keeps its perfect-subtree hashes: level ``k`` holds, in
    order, the hashes of the aligned subtrees of ``2**k`` leaves (level 0 holds the leaves)."""

    def append(self, level: int, node: bytes) -> None:
        """Add the next 32-byte hash of ``level`` (creating the level if it is new)."""

    def get(self, level: int, index: int) -> bytes:
        """Hash number ``index`` of ``level``; it has been appended."""

    def count(self, level: int) -> int:
        """How many hashes ``level`` holds (0 for a level never appended to)."""


class MemoryLevels:
    """The levels packed in bytearrays: 2 x 32 bytes of heap per leaf."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    def append(self, level: int, node: bytes) -> None:
        if level == len(self._levels):
            self._levels.append(bytearray())
        self._levels[level] += node

    def get(self, level: int, index: int) -> bytes:
        i = index * HASH_SIZE
        return bytes(self._levels[level][i : i + HASH_SIZE])

    def count(self, level: int) -> int:
        return len(self._levels[level]) // HASH_SIZE if level < len(self._levels) else 0


class MerkleTree:
    """Append-only tree that keeps every perfect subtree hash for fast proofs.

    A non-empty ``store`` must hold a consistent tree: ``count(k) == count(0) >> k`` for all k.
    """

    __slots__ = ("_store", "size")

    def __init__(self, store: LevelStore | None = None) -> None:
        self._store: LevelStore = MemoryLevels() if store is None else store
        self.size = self._store.count(0)

    @property
    def store(self) -> LevelStore:
        return self._store

    def append(self, leaf: bytes) -> None:
        store = self._store
        store.append(0, leaf)
        index = self.size
        level = 0
        node = leaf
        while index & 1:
            node = sha256(b"\x01" + store.get(level, index - 1) + node).digest()
            level += 1
            index >>= 1
            store.append(level, node)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} outside tree of size {self.size}")
        return self._store.get(0, index)

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)`` where ``lo`` is aligned as in the RFC's recursion."""
        n = hi - lo
        if n <= 0 or hi > self.size:
            raise ProofError(f"subtree [{lo}, {hi}) outside tree of size {self.size}")
        if n & (n - 1) == 0 and lo % n == 0:
            level = n.bit_length() - 1
            return self._store.get(level, lo >> level)
        k = _split(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size > self.size:
            raise ProofError(f"no root for size {size}: tree has {self.size} leaves")
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def compact_range(self, begin: int, end: int) -> CompactRange:
        """The perfect subtrees covering ``[begin, end)`` (e.g. a frontier when ``begin == 0``)."""
        if end > self.size:
            raise ProofError(f"range [{begin}, {end}) outside tree of size {self.size}")
        hashes = []
        pos = begin
        for level in range_shape(begin, end):
            hashes.append(self.subtree(pos, pos + (1 << level)))
            pos += 1 << level
        return CompactRange(begin, end, hashes)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size])."""
        if not 0 <= index < size <= self.size:
            raise ProofError(f"no inclusion proof for leaf {index} in tree size {size}")
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                proof.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree(lo, lo + k))
                lo += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]); empty when sizes are equal or 0."""
        if not 0 <= old_size <= new_size <= self.size:
            raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        lo, hi, m, complete = 0, new_size, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            proof.append(self.subtree(lo, hi))
        proof.reverse()
        return proof


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2); raises on malformed proofs."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside tree size {size}")
    _check_hash(leaf, "leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf ``index`` is in the tree ``root``."""
    _check_hash(root, "root hash")
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the tree root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows tree ``new_root`` extends ``old_root``
    (RFC 9162 §2.1.4.2)."""
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for p in proof:
        _check_hash(p, "proof hash")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("proof must be empty for equal tree sizes")
        if old_root != new_root:
            raise ProofError("equal tree sizes with different roots")
        return
    if old_size == 0:
        if proof:
            raise ProofError("proof must be empty from the empty tree")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the root of size {new_size}")
