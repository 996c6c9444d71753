"""Real transfers through the staging package: local trees, HTTP and S3 on loopback."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.checkpoint import verify_inputs
from hpcbridge.spec import JobSpec
from hpcbridge.staging import (
    INPUTS,
    ChecksumMismatchError,
    Retry,
    StagingError,
    _transfer,
    default_algorithm,
    manifest_dir,
    preflight,
    read_manifest,
    stage_in,
    stage_out,
)
from hpcbridge.staging._urls import locate
from hpcbridge.states import FailureClass

FAST = Retry(attempts=3, initial_s=0.0)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(os.urandom(3 << 20))
    (root / "sub" / "b.txt").write_text("b\n")
    (root / "sub" / "c.log").write_text("noise\n")
    return root


def test_a_tree_is_staged_with_globs_and_a_manifest(
    tree: Path, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    spec = make_spec(stage_in=[{"source": str(tree), "dest": "in", "exclude": ["*.log"]}])
    data = tmp_path / "data"
    report = stage_in(spec, data, retry=FAST)
    assert sorted(Path(f.path).relative_to(data).as_posix() for f in report.files) == [
        "in/a.bin",
        "in/sub/b.txt",
    ]
    assert not (data / "in" / "sub" / "c.log").exists()
    assert (data / "in" / "a.bin").read_bytes() == (tree / "a.bin").read_bytes()
    records = read_manifest(manifest_dir(data) / INPUTS)
    assert {r.digest.partition(":")[0] for r in records} == {default_algorithm()}
    assert report.bytes_copied == report.bytes_total == (3 << 20) + 2
    # Staged again (a crash, a retry): kept files are re-verified, nothing is copied.
    assert stage_in(spec, data, retry=FAST).bytes_copied == 0


def test_a_flipped_byte_fails_with_checksum_mismatch_naming_file_and_digests(
    tree: Path, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    good = (tree / "a.bin").read_bytes()
    expected = sha256(good)
    bad = bytearray(good)
    bad[12345] ^= 0x01
    (tree / "a.bin").write_bytes(bytes(bad))
    spec = make_spec(
        stage_in=[{"source": str(tree / "a.bin"), "dest": "a.bin", "checksum": expected}]
    )
    with pytest.raises(ChecksumMismatchError) as caught:
        stage_in(spec, tmp_path / "data", retry=FAST)
    error = caught.value
    assert error.failure_class is FailureClass.CHECKSUM_MISMATCH
    assert str(tree / "a.bin") in error.message
    assert expected in error.message and sha256(bytes(bad)) in error.message
    assert not (tmp_path / "data" / "a.bin").exists()  # never under its final name
    assert not (tmp_path / "data" / "a.bin.part").exists()


def test_retries_are_bounded_and_a_part_file_is_resumed(
    tmp_path: Path, make_spec: Callable[..., JobSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "big.bin"
    payload = os.urandom(5 << 20)
    source.write_bytes(payload)
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin.part").write_bytes(payload[: 2 << 20])  # an earlier try stopped here
    spec = make_spec(
        stage_in=[{"source": str(source), "dest": "big.bin", "checksum": sha256(payload)}]
    )
    report = stage_in(spec, data, retry=FAST)
    assert report.bytes_copied == (5 << 20) - (2 << 20)
    assert (data / "big.bin").read_bytes() == payload

    missing = make_spec(stage_in=[{"source": str(tmp_path / "nope"), "dest": "x"}])
    with pytest.raises(StagingError, match="does not exist"):
        stage_in(missing, data, retry=FAST)

    calls: list[float] = []

    def broken(*args: object, **kwargs: object) -> object:
        raise OSError("connection reset")

    monkeypatch.setattr(_transfer, "_copy_once", broken)
    task = _transfer.FileTask(locate(str(source), data), locate("y", data), 5 << 20)
    with pytest.raises(StagingError, match="connection reset"):
        _transfer.transfer(task, "sha256", Retry(attempts=4, initial_s=0.1), sleep=calls.append)
    assert calls == [0.1, 0.2, 0.4]  # four tries, three waits, doubling


def test_http_inputs_and_read_only_outputs(
    http_root: tuple[Path, str], tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    root, base = http_root
    payload = os.urandom(1 << 20)
    (root / "model.bin").write_bytes(payload)
    spec = make_spec(
        stage_in=[{"source": f"{base}/model.bin", "dest": "model.bin", "checksum": sha256(payload)}]
    )
    report = stage_in(spec, tmp_path / "data", retry=FAST)
    assert (tmp_path / "data" / "model.bin").read_bytes() == payload
    assert report.files[0].source == f"{base}/model.bin"
    out = make_spec(stage_out=[{"source": "r", "dest": f"{base}/r"}])
    assert "read-only" in " ".join(preflight(out, tmp_path / "data").problems)


def test_s3_in_and_out(s3_env: str, tmp_path: Path, make_spec: Callable[..., JobSpec]) -> None:
    fsspec = pytest.importorskip("fsspec")
    s3 = fsspec.filesystem("s3", skip_instance_cache=True)
    s3.mkdir("hb-test")
    payload = os.urandom(2 << 20)
    s3.pipe("hb-test/inputs/x.bin", payload)
    s3.pipe("hb-test/inputs/deep/y.txt", b"y\n")
    spec = make_spec(
        stage_in=[{"source": "s3://hb-test/inputs", "dest": "in"}],
        stage_out=[{"source": "in", "dest": "s3://hb-test/outputs", "include": ["*.bin"]}],
    )
    data = tmp_path / "data"
    stage_in(spec, data, retry=FAST)
    assert (data / "in" / "x.bin").read_bytes() == payload
    assert (data / "in" / "deep" / "y.txt").read_text() == "y\n"
    report = stage_out(spec, data, succeeded=True, retry=FAST)
    assert [f.path for f in report.files] == ["hb-test/outputs/x.bin"]
    s3.invalidate_cache()
    assert s3.cat("hb-test/outputs/x.bin") == payload


def test_preflight_names_missing_inputs_and_counts_bytes(
    tree: Path, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    spec = make_spec(stage_in=[{"source": str(tree), "dest": "in"}])
    checked = preflight(spec, tmp_path / "data")
    assert checked.problems == () and checked.files == 3
    assert checked.bytes_total == (3 << 20) + 2 + 6
    missing = make_spec(stage_in=[{"source": str(tmp_path / "gone.csv"), "dest": "in"}])
    (problem,) = preflight(missing, tmp_path / "data").problems
    assert "gone.csv does not exist" in problem
    escape = make_spec(stage_in=[{"source": str(tree), "dest": "../../etc"}])
    assert "leaves the job's data directory" in preflight(escape, tmp_path / "d").problems[0]


def test_the_node_side_check_runs_the_command_only_on_unchanged_inputs(
    tree: Path, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    spec = make_spec(stage_in=[{"source": str(tree / "sub"), "dest": "in"}])
    data = tmp_path / "data"
    stage_in(spec, data, retry=FAST)
    manifest = manifest_dir(data) / INPUTS
    status = tmp_path / "status"
    argv = [sys.executable, "-m", "hpcbridge.checkpoint.verify_inputs", str(manifest)]
    ran = subprocess.run(
        [*argv, str(status), "--", "echo", "ran"], capture_output=True, text=True, check=False
    )
    assert (ran.returncode, ran.stdout) == (0, "ran\n")
    (data / "in" / "b.txt").write_text("c\n")  # same size, other bytes
    ran = subprocess.run(
        [*argv, str(status), "--", "echo", "ran"], capture_output=True, text=True, check=False
    )
    assert ran.returncode == verify_inputs.EXIT_CODE and ran.stdout == ""
    mark = (status / verify_inputs.MARK).read_text()
    assert "b.txt: checksum mismatch" in mark and "staged" in mark


def test_one_writer_per_destination(tmp_path: Path) -> None:
    import fcntl  # noqa: PLC0415

    source = tmp_path / "s.bin"
    source.write_bytes(b"x" * 100)
    data = tmp_path / "data"
    data.mkdir()
    task = _transfer.FileTask(locate(str(source), data), locate("s.bin", data), 100)
    with open(data / "s.bin.part", "ab") as held:  # another process's stage, mid-copy
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(StagingError, match="another process is writing it"):
            _transfer.transfer(task, "sha256", Retry(attempts=1), sleep=lambda _: None)
    record, copied = _transfer.transfer(task, "sha256", Retry(attempts=1))
    assert (copied, (data / "s.bin").read_bytes()) == (100, b"x" * 100)
    assert record.size == 100


def test_a_tree_with_links_stages_linked_files_and_refuses_other_links(
    tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("a")
    (tree / "b.txt").write_text("bb")
    (tree / "to-b.txt").symlink_to(tree / "b.txt")
    (tree / "to-sub").symlink_to(tree / "sub")
    entry = {"source": str(tree), "dest": "in", "exclude": ["to-sub"]}
    report = stage_in(make_spec(stage_in=[entry]), tmp_path / "data")
    staged = sorted(
        Path(f.path).relative_to(tmp_path / "data" / "in").as_posix() for f in report.files
    )
    assert staged == ["b.txt", "sub/a.txt", "to-b.txt"]
    assert (tmp_path / "data" / "in" / "to-b.txt").read_text() == "bb"
    with pytest.raises(StagingError, match="to-sub is a symbolic link to a directory"):
        stage_in(make_spec(stage_in=[{"source": str(tree), "dest": "in2"}]), tmp_path / "data")
