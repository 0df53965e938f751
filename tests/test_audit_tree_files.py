"""The audit tree kept in files: same proofs as in memory, reopening hashes only the tail, and
files that are damaged, short or gone are rebuilt from the entries."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.keys import generate_signing_key
from gateway.audit.store import CHECKPOINTS_FILE, ENTRIES_FILE
from gateway.audit.tree_files import TREE_DIR, FileLevels
from otc.audit.checkpoint import Checkpoint
from otc.audit.merkle import MerkleTree, leaf_hash
from tests.test_audit_crash import _run_and_kill
from tests.test_audit_log import open_log


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=300),
    flush_every=st.integers(min_value=1, max_value=64),
    data=st.data(),
)
def test_file_levels_give_the_same_roots_and_proofs_as_memory(size, flush_every, data):
    with tempfile.TemporaryDirectory() as tmp:
        memory = MerkleTree()
        files = FileLevels(Path(tmp) / TREE_DIR)
        on_disk = MerkleTree(files)
        for i in range(size):
            leaf = leaf_hash(i.to_bytes(4, "big"))
            memory.append(leaf)
            on_disk.append(leaf)
            if i % flush_every == 0:
                files.flush()
        files.close()
        reopened_levels = FileLevels(Path(tmp) / TREE_DIR)
        reopened = MerkleTree(reopened_levels)
        try:
            assert reopened.size == size
            for n in range(size + 1):
                assert reopened.root(n) == memory.root(n)
            if size:
                new = data.draw(st.integers(min_value=1, max_value=size))
                old = data.draw(st.integers(min_value=0, max_value=new))
                index = data.draw(st.integers(min_value=0, max_value=new - 1))
                assert reopened.inclusion_proof(index, new) == memory.inclusion_proof(index, new)
                assert reopened.consistency_proof(old, new) == memory.consistency_proof(old, new)
        finally:
            reopened_levels.close()


def _signed_size(directory: Path) -> int:
    lines = (directory / CHECKPOINTS_FILE).read_bytes().splitlines()
    return Checkpoint.from_line(lines[-1]).size if lines else 0


def _fill(directory: Path, count: int, **kwargs) -> bytes:
    with open_log(directory, **kwargs) as log:
        for i in range(count):
            log.append("fix.in", "s", {"i": i})
    with open_log(directory, tree_files=False) as log:
        return log.root(log.size)


def test_reopen_after_clean_close_hashes_no_entry(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    root = _fill(directory, 70)
    with open_log(directory) as log:
        assert log.opened == {"reused": 70, "hashed": 0}
        assert log.root(log.size) == root
        log.append("fix.in", "s", {"i": 70})
        assert log.inclusion_proof(3, 71) == _memory_tree(directory).inclusion_proof(3, 71)
    with open_log(directory) as log:
        assert log.opened == {"reused": 71, "hashed": 0}


def _memory_tree(directory: Path) -> MerkleTree:
    tree = MerkleTree()
    for line in (directory / ENTRIES_FILE).read_bytes().splitlines():
        tree.append(leaf_hash(line))
    return tree


def test_reopen_after_kill_hashes_only_entries_after_the_checkpoint(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    _run_and_kill(directory, acks_before_kill=1500)
    signed = _signed_size(directory)
    assert signed >= 500
    with open_log(directory) as log:
        size = log.size
        assert log.opened["reused"] == signed
        assert log.opened["hashed"] == size - signed
        assert log.root(log.size) == _memory_tree(directory).root()


def test_damaged_level_file_is_detected_and_rebuilt(tmp_path, caplog):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    root = _fill(directory, 64)  # a perfect tree: its root is the one hash of level 6
    top = directory / TREE_DIR / "level-06.bin"
    top.write_bytes(bytes(32))
    with caplog.at_level(logging.WARNING), open_log(directory) as log:
        assert log.opened == {"reused": 0, "hashed": 64}
        assert log.root(log.size) == root
    assert "rebuilt" in caplog.text and "root" in caplog.text
    with open_log(directory) as log:
        assert log.opened == {"reused": 64, "hashed": 0}


def test_wrong_leaf_in_level_zero_is_detected_and_rebuilt(tmp_path, caplog):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    root = _fill(directory, 9)
    leaves = directory / TREE_DIR / "level-00.bin"
    data = bytearray(leaves.read_bytes())
    data[-1] ^= 0xFF
    leaves.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING), open_log(directory) as log:
        assert log.opened == {"reused": 0, "hashed": 9}
        assert log.root(log.size) == root
    assert "leaf 8" in caplog.text


def test_short_level_files_resume_from_what_they_hold(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    root = _fill(directory, 40)
    leaves = directory / TREE_DIR / "level-00.bin"
    leaves.write_bytes(leaves.read_bytes()[: 25 * 32 + 7])  # 25 leaves and part of one
    with open_log(directory) as log:
        assert log.opened == {"reused": 25, "hashed": 15}
        assert log.root(log.size) == root


def test_deleted_tree_directory_is_rebuilt(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    root = _fill(directory, 33)
    for path in (directory / TREE_DIR).iterdir():
        path.unlink()
    (directory / TREE_DIR).rmdir()
    with open_log(directory) as log:
        assert log.opened == {"reused": 0, "hashed": 33}
        assert log.root(log.size) == root
    assert (directory / TREE_DIR / "level-00.bin").stat().st_size == 33 * 32
    with open_log(directory) as log:
        assert log.opened == {"reused": 33, "hashed": 0}


def test_in_memory_tree_leaves_no_files(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    with open_log(directory, tree_files=False) as log:
        log.append("fix.in", "s", {"i": 0})
        assert log.opened == {"reused": 0, "hashed": 0}
    assert not (directory / TREE_DIR).exists()


def test_a_missing_middle_level_is_rebuilt_and_stale_levels_above_it_are_not_used(tmp_path):
    directory = tmp_path / "audit"
    generate_signing_key(directory)
    root = _fill(directory, 16)
    (directory / TREE_DIR / "level-02.bin").unlink()
    with open_log(directory) as log:
        assert log.opened["reused"] == 3  # level 2 holds no hash: at most 3 leaves are whole
        assert log.root(16) == root
        for i in range(16, 40):
            log.append("fix.in", "s", {"i": i})
    with open_log(directory) as log:
        assert log.opened == {"reused": 40, "hashed": 0}
        assert log.root(40) == _memory_tree(directory).root()
