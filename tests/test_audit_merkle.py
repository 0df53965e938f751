"""RFC 6962 Merkle trees: known-answer vectors, a naive reference, and proof properties."""

from __future__ import annotations

from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otc.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    range_shape,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

# The certificate-transparency / transparency-dev test tree (proof/verify_test.go).
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def _tree(n: int) -> MerkleTree:
    tree = MerkleTree()
    tree.extend(leaf_hash(data) for data in LEAVES[:n])
    return tree


# -- a naive recursive reference, transcribed from RFC 6962 §2.1 -------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return sha256(b"").digest()
    if len(d) == 1:
        return sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def _data(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


# -- known answers ----------------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing():
    assert (
        MerkleTree().root()
        == EMPTY_ROOT
        == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )
    assert CompactRange().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_rfc6962_vectors(size):
    assert _tree(size).root().hex() == ROOTS[size - 1]
    frontier = CompactRange()
    for data in LEAVES[:size]:
        frontier.append(leaf_hash(data))
    assert frontier.root().hex() == ROOTS[size - 1]
    assert _tree(8).root(size).hex() == ROOTS[size - 1]  # past sizes from a larger tree


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_vectors(index, size, proof):
    tree = _tree(8)
    assert [h.hex() for h in tree.inclusion_proof(index, size)] == proof
    leaf = leaf_hash(LEAVES[index])
    verify_inclusion(index, size, leaf, [bytes.fromhex(h) for h in proof], tree.root(size))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_vectors(old, new, proof):
    tree = _tree(8)
    assert [h.hex() for h in tree.consistency_proof(old, new)] == proof
    verify_consistency(old, new, tree.root(old), tree.root(new), [bytes.fromhex(h) for h in proof])


def _corrupt_inclusion(index, size, leaf, proof, root):
    yield index + 1, size, leaf, proof, root
    if index > 0:
        yield index - 1, size, leaf, proof, root
    yield index, size * 2, leaf, proof, root
    yield index, size, leaf_hash(b"wrong"), proof, root
    yield index, size, leaf, proof, EMPTY_ROOT
    yield index, size, leaf, [*proof, root], root
    yield index, size, leaf, [root, *proof], root
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        yield index, size, leaf, flipped, root
    if proof:
        yield index, size, leaf, proof[:-1], root


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_are_rejected(index, size, proof):
    tree = _tree(8)
    good = [bytes.fromhex(h) for h in proof]
    for args in _corrupt_inclusion(index, size, leaf_hash(LEAVES[index]), good, tree.root(size)):
        with pytest.raises(ProofError):
            verify_inclusion(*args)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_are_rejected(old, new, proof):
    tree = _tree(8)
    good = [bytes.fromhex(h) for h in proof]
    r1, r2 = tree.root(old), tree.root(new)
    bad = [
        (old - 1, new, r1, r2, good),
        (old + 1, new, r1, r2, good),
        (old, new * 2, r1, r2, good),
        (old, new, r2, r1, good),
        (old, new, leaf_hash(b"x"), r2, good),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*good, r1]),
        (old, new, r1, r2, [r2, *good]),
        (old, new, r1, r2, good[:-1]),
    ]
    for i in range(len(good)):
        flipped = list(good)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        bad.append((old, new, r1, r2, flipped))
    for args in bad:
        with pytest.raises(ProofError):
            verify_consistency(*args)


def test_edge_cases_of_verification():
    leaf = leaf_hash(b"data")
    verify_inclusion(0, 1, leaf, [], leaf)  # a one-leaf tree's root is its leaf
    for index, size in ((0, 0), (1, 1), (2, 1)):
        with pytest.raises(ProofError):
            root_from_inclusion(index, size, leaf, [])
    with pytest.raises(ProofError):
        verify_inclusion(0, 1, b"short", [], leaf)
    verify_consistency(0, 5, EMPTY_ROOT, leaf, [])  # the empty tree is a prefix of anything
    with pytest.raises(ProofError):
        verify_consistency(3, 3, leaf, EMPTY_ROOT, [])
    with pytest.raises(ProofError):
        verify_consistency(4, 3, leaf, leaf, [])


# -- against the naive reference --------------------------------------------------------------


def test_tree_matches_naive_reference_for_every_small_size():
    data = _data(40)
    tree = MerkleTree()
    tree.extend(leaf_hash(d) for d in data)
    for n in range(0, 41):
        assert tree.root(n) == ref_mth(data[:n])
    for n in range(1, 41):
        for m in range(n):
            assert tree.inclusion_proof(m, n) == ref_path(m, data[:n])
        for m in range(1, n):
            assert tree.consistency_proof(m, n) == ref_subproof(m, data[:n], True)


def test_range_shape_is_minimal_aligned_decomposition():
    assert range_shape(0, 7) == [2, 1, 0]
    assert range_shape(3, 7) == [0, 1, 0]
    assert range_shape(3, 8) == [0, 2]
    assert range_shape(1, 8) == [0, 1, 2]
    assert range_shape(5, 5) == []
    with pytest.raises(ProofError):
        CompactRange(0, 3, [EMPTY_ROOT])  # needs two hashes


# -- properties -------------------------------------------------------------------------------


@st.composite
def _tree_and_points(draw):
    n = draw(st.integers(min_value=1, max_value=300))
    index = draw(st.integers(min_value=0, max_value=n - 1))
    old = draw(st.integers(min_value=0, max_value=n))
    begin = draw(st.integers(min_value=0, max_value=n))
    end = draw(st.integers(min_value=begin, max_value=n))
    return n, index, old, begin, end


_BIG = MerkleTree()
_BIG.extend(leaf_hash(d) for d in _data(300))


@settings(max_examples=150, deadline=None)
@given(_tree_and_points())
def test_generated_proofs_verify_and_tampering_fails(case):
    n, index, old, begin, end = case
    leaf, root = _BIG.leaf(index), _BIG.root(n)
    proof = _BIG.inclusion_proof(index, n)
    verify_inclusion(index, n, leaf, proof, root)
    if proof:
        with pytest.raises(ProofError):
            verify_inclusion(index, n, leaf, [node_hash(proof[0], proof[0]), *proof[1:]], root)
    consistency = _BIG.consistency_proof(old, n)
    verify_consistency(old, n, _BIG.root(old), root, consistency)
    if 0 < old < n:
        with pytest.raises(ProofError):
            verify_consistency(
                old, n, _BIG.root(old), _BIG.root(n - 1) if n > 1 else root, consistency
            )
    # Three adjacent compact ranges merge into the tree's root.
    merged = _BIG.compact_range(0, begin)
    merged.extend(_BIG.compact_range(begin, end))
    merged.extend(_BIG.compact_range(end, n))
    assert merged.root() == root
    streamed = CompactRange(begin)
    for i in range(begin, end):
        streamed.append(_BIG.leaf(i))
    assert streamed.hashes == _BIG.compact_range(begin, end).hashes
