from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.checkpoint import (
    MANIFEST_NAME,
    CheckpointConfigError,
    Checkpointer,
    CheckpointError,
    Manifest,
    _hashing,
)
from tests.checkpoint._helpers import read_events

MakeCkpt = Callable[..., Checkpointer]
MiB = 1 << 20


def sha256_tree_8mib(data: bytes) -> str:
    """The digest as the manifest documents it, computed here independently of the SDK."""
    piece = 8 * MiB
    leaves = b"".join(
        hashlib.sha256(data[start : start + piece]).digest() for start in range(0, len(data), piece)
    )
    return hashlib.sha256(leaves).hexdigest()


def test_save_commits_a_complete_manifest(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt(job_id="j-9", attempt=2)
    with ckpt.save(42, metadata={"epoch": 3}) as d:
        (d / "by-path.bin").write_bytes(b"x" * 1000)
        with open(d / "opened.txt", "w") as f:
            f.write("hello")
        d.write_bytes("sub/dir/streamed.bin", b"y" * (3 << 20))
        d.write_json("state.json", {"step": 42})
    assert d.checkpoint is not None
    path = ckpt.directory / "step-00000042"
    assert d.checkpoint.path == path
    assert sorted(os.listdir(ckpt.directory)) == ["step-00000042"]

    document = json.loads((path / MANIFEST_NAME).read_text())
    assert document["format"] == "hpcbridge.checkpoint"
    assert document["version"] == 2
    assert document["step"] == 42
    assert document["job_id"] == "j-9"
    assert document["attempt"] == 2
    assert document["algorithm"] == ckpt.algorithm == "sha256-tree-8MiB"
    assert document["metadata"] == {"epoch": 3}
    assert abs(document["created"] - time.time()) < 60
    files = {f["path"]: f for f in document["files"]}
    assert sorted(files) == ["by-path.bin", "opened.txt", "state.json", "sub/dir/streamed.bin"]
    assert files["sub/dir/streamed.bin"]["size"] == 3 << 20
    assert document["total_bytes"] == sum(f["size"] for f in document["files"])
    for name, entry in files.items():
        assert entry["digest"] == sha256_tree_8mib((path / name).read_bytes())
    assert Manifest.from_json((path / MANIFEST_NAME).read_bytes()).step == 42


@pytest.mark.parametrize(
    "size", [0, 1, MiB - 1, MiB, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1, 19 * MiB + 5]
)
def test_digests_follow_the_documented_tree_however_the_file_is_written(
    make_ckpt: MakeCkpt, size: int
) -> None:
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    ckpt = make_ckpt()
    with ckpt.save(1) as d:
        d.write_bytes("at-once.bin", data)
        with d.open("in-pieces.bin") as f:
            for start in range(0, size, 3 * MiB + 7):  # pieces that straddle 8 MiB borders
                f.write(data[start : start + 3 * MiB + 7])
        (d / "by-path.bin").write_bytes(data)
    assert d.checkpoint is not None
    expected = sha256_tree_8mib(data)
    assert {e.path: e.digest for e in d.checkpoint.manifest.files} == {
        "at-once.bin": expected,
        "by-path.bin": expected,
        "in-pieces.bin": expected,
    }
    found = ckpt.latest_valid()
    assert found is not None and found.verified == "full"
    assert found.read_bytes("in-pieces.bin") == data


@pytest.mark.parametrize("by_path", [False, True])
def test_a_hashing_failure_fails_the_save(
    make_ckpt: MakeCkpt, status_dir: Path, monkeypatch: pytest.MonkeyPatch, by_path: bool
) -> None:
    ckpt = make_ckpt()
    ckpt.save_json(1, {"ok": 1})

    def broken(*args: object) -> bytes:
        raise OSError("read-back failed")

    monkeypatch.setattr(_hashing, "hash_piece", broken)
    with pytest.raises(OSError, match="read-back failed"), ckpt.save(2) as d:
        if by_path:
            (d / "big.bin").write_bytes(b"z" * (20 * MiB))
        else:
            d.write_bytes("big.bin", b"z" * (20 * MiB))
    assert [step for step, _ in ckpt.checkpoints()] == [1]
    failed = [e for e in read_events(status_dir) if e["type"] == "checkpoint_save_failed"]
    assert failed[-1]["step"] == 2 and "read-back failed" in failed[-1]["reason"]


@pytest.mark.parametrize("algorithm", ["blake3", "sha256", "md5"])
def test_other_algorithms_are_refused(make_ckpt: MakeCkpt, algorithm: str) -> None:
    with pytest.raises(CheckpointConfigError, match="sha256-tree-8MiB"):
        make_ckpt(algorithm=algorithm)
    assert make_ckpt(algorithm="sha256-tree-8MiB").algorithm == "sha256-tree-8MiB"


def test_sdk_works_without_blake3(tmp_path: Path) -> None:
    code = """
import sys
sys.modules["blake3"] = None  # make the import fail
from hpcbridge.checkpoint import Checkpointer
c = Checkpointer(sys.argv[1])
c.save_json(1, {"ok": True})
found = c.latest_valid()
print(found.manifest.algorithm, found.read_json())
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sha256-tree-8MiB", "{'ok':", "True}"]


def test_save_bytes_and_json_round_trip(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    ckpt.save_bytes(1, {"a.bin": b"\x00\x01", "nested/b.bin": b""})
    ckpt.save_json(2, {"w": [0.1, 2.5e-300], "name": "ü"}, metadata={"m": 1})
    found = ckpt.restore()
    assert found is not None
    assert found.step == 2
    assert found.read_json() == {"w": [0.1, 2.5e-300], "name": "ü"}
    assert found.metadata == {"m": 1}
    older = ckpt.checkpoints()[0]
    assert older[0] == 1


def test_writer_hashes_as_it_writes_in_many_small_pieces(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    pieces = [bytes([i % 251]) * (i * 37 % 5000) for i in range(2000)]
    with ckpt.save(1) as d, d.open("pieces.bin") as f:
        for piece in pieces:
            assert f.write(piece) == len(piece)
        f.write(memoryview(b"tail"))
        assert f.tell() == sum(map(len, pieces)) + 4
    found = ckpt.latest_valid()
    assert found is not None
    assert found.read_bytes("pieces.bin") == b"".join(pieces) + b"tail"


def test_writer_never_reads_a_buffer_after_write_returns(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    buffer = bytearray(9 << 20)  # larger than the hasher's read-back pieces
    expected = []
    with ckpt.save(1) as d, d.open("big.bin") as f:
        for fill in range(5):
            buffer[:] = bytes([fill]) * len(buffer)
            f.write(buffer)  # the buffer is reused at once, as training loops do
            expected.append(bytes(buffer))
    found = ckpt.latest_valid()
    assert found is not None
    assert found.read_bytes("big.bin") == b"".join(expected)


def test_file_changed_after_its_writer_closed_is_hashed_again(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    with ckpt.save(1) as d:
        d.write_bytes("f.bin", b"first")
        (d / "f.bin").write_bytes(b"second, longer")
    found = ckpt.latest_valid()
    assert found is not None and found.read_bytes("f.bin") == b"second, longer"


def test_failure_inside_the_block_discards_the_save(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt = make_ckpt()
    ckpt.save_json(1, {"ok": 1})
    with pytest.raises(RuntimeError, match="boom"), ckpt.save(2) as d:
        d.write_bytes("half.bin", b"x")
        raise RuntimeError("boom")
    assert sorted(os.listdir(ckpt.directory)) == ["step-00000001"]
    found = ckpt.latest_valid()
    assert found is not None and found.step == 1
    failed = [e for e in read_events(status_dir) if e["type"] == "checkpoint_save_failed"]
    assert failed[0]["step"] == 2 and "boom" in failed[0]["reason"]


@pytest.mark.parametrize("name", [MANIFEST_NAME, "../escape", "/abs", "a//b", "./a", ""])
def test_bad_names_are_refused(make_ckpt: MakeCkpt, name: str) -> None:
    ckpt = make_ckpt()
    with pytest.raises(ValueError), ckpt.save(1) as d:
        d.write_bytes(name, b"x")
    assert ckpt.checkpoints() == []


def test_manifest_written_by_the_job_is_refused(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    with pytest.raises(CheckpointError, match="reserved"), ckpt.save(1) as d:
        (d / MANIFEST_NAME).write_text("{}")
    assert ckpt.checkpoints() == []


def test_symlinks_are_refused(make_ckpt: MakeCkpt, tmp_path: Path) -> None:
    ckpt = make_ckpt()
    (tmp_path / "outside").write_text("secret")
    with pytest.raises(CheckpointError, match="regular file"), ckpt.save(1) as d:
        os.symlink(tmp_path / "outside", d / "link")
    assert ckpt.checkpoints() == []


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_step_must_be_a_non_negative_int(make_ckpt: MakeCkpt, bad: Any) -> None:
    with pytest.raises(ValueError):
        make_ckpt().save(bad)


def test_non_finite_json_is_refused(make_ckpt: MakeCkpt) -> None:
    with pytest.raises(ValueError):
        make_ckpt().save_json(1, {"loss": float("nan")})
    with pytest.raises(ValueError):
        make_ckpt().save(1, metadata={"x": float("inf")})


@pytest.mark.parametrize("keep", [1, 2, 3, 5])
def test_keep_last_k(make_ckpt: MakeCkpt, keep: int, status_dir: Path) -> None:
    ckpt = make_ckpt(keep=keep)
    for step in range(1, 11):
        ckpt.save_json(step, {"step": step})
        assert len(ckpt.checkpoints()) == min(step, keep)
    assert [s for s, _ in ckpt.checkpoints()] == list(range(11 - keep, 11))
    assert sorted(os.listdir(ckpt.directory)) == [f"step-{s:08d}" for s in range(11 - keep, 11)]
    pruned = [e["step"] for e in read_events(status_dir) if e["type"] == "checkpoint_pruned"]
    assert pruned == list(range(1, 11 - keep))


def test_keep_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCBRIDGE_CHECKPOINT_DIR", str(tmp_path / "env-ckpt"))
    monkeypatch.setenv("HPCBRIDGE_CHECKPOINT_KEEP", "2")
    ckpt = Checkpointer()
    for step in range(5):
        ckpt.save_json(step, {})
    assert ckpt.directory == tmp_path / "env-ckpt"
    assert [s for s, _ in ckpt.checkpoints()] == [3, 4]


def test_saving_a_step_again_replaces_it_atomically(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    ckpt.save_json(5, {"v": "old"})
    ckpt.save_json(5, {"v": "new"})
    assert sorted(os.listdir(ckpt.directory)) == ["step-00000005.1"]
    found = ckpt.latest_valid()
    assert found is not None and found.step == 5 and found.read_json() == {"v": "new"}
    ckpt.save_json(5, {"v": "newer"})
    assert sorted(os.listdir(ckpt.directory)) == ["step-00000005.2"]


def test_saving_an_older_step_drops_the_abandoned_newer_ones(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt(keep=5)
    for step in (10, 20, 30):
        ckpt.save_json(step, {"step": step})
    ckpt.save_json(25, {"step": 25})  # e.g. resumed from 20 because 30 was corrupt
    assert [s for s, _ in ckpt.checkpoints()] == [10, 20, 25]
    found = ckpt.latest_valid()
    assert found is not None and found.step == 25


def test_stale_temporary_directories_are_cleaned_up(make_ckpt: MakeCkpt) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(dead.stdout)
    ckpt = make_ckpt(attempt=3)
    ckpt.directory.mkdir(parents=True)
    host = ckpt._host
    names = {
        "dead": f".tmp-step-00000007-a3-{host}-{dead_pid}-0000aaaa",
        "alive": f".tmp-step-00000007-a3-{host}-{os.getppid()}-0000bbbb",
        "earlier": f".tmp-step-00000007-a2-00000000-{os.getppid()}-0000cccc",
        "other-host": f".tmp-step-00000007-a3-00000000-{os.getppid()}-0000dddd",
        "trash": ".trash-step-00000003-0000eeee",
    }
    for name in names.values():
        (ckpt.directory / name).mkdir()
        (ckpt.directory / name / "junk").write_bytes(b"j")
    ckpt.save_json(8, {})
    left = sorted(os.listdir(ckpt.directory))
    assert left == sorted([names["alive"], names["other-host"], "step-00000008"])


def test_a_session_is_only_usable_inside_its_block(make_ckpt: MakeCkpt) -> None:
    session = make_ckpt().save(1)
    with pytest.raises(RuntimeError, match="inside"):
        _ = session / "x"
    with session:
        pass
    with pytest.raises(RuntimeError, match="only once"), session:
        pass
