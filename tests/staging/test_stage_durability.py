"""What a stage waits for the disk for: outputs, and inputs for a job on another node, are
durable before their manifest names them (many small files by one syncfs); a local job's
inputs are not, being hashed again before every use."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from hpcbridge.checkpoint import verify_inputs
from hpcbridge.spec import JobSpec
from hpcbridge.staging import (
    INPUTS,
    OUTPUTS,
    Retry,
    _stage,
    _transfer,
    manifest_dir,
    stage_in,
    stage_out,
)
from hpcbridge.staging._sync import sync_filesystems


class _DiskWaits:
    """What a stage waits for the disk for: syncfs calls (and whether the manifest existed
    then), and the size of each fsynced file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, manifest: Path) -> None:
        self.synced: list[set[Path]] = []
        self.fsyncs: list[int] = []
        self.manifest_then: list[bool] = []
        real_fsync = os.fsync

        def spy_sync(paths: Iterable[Path]) -> None:
            paths = set(paths)
            self.manifest_then.append(manifest.exists())
            self.synced.append(paths)
            sync_filesystems(paths)

        def spy_fsync(fd: int) -> None:
            self.fsyncs.append(os.fstat(fd).st_size)
            real_fsync(fd)

        monkeypatch.setattr(_stage, "sync_filesystems", spy_sync)
        monkeypatch.setattr(os, "fsync", spy_fsync)  # the manifest's own fsync is seen too


def _small_and_large(root: Path) -> None:
    for n in range(30):
        (root / f"d{n % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{n % 3}" / f"f{n}").write_bytes(os.urandom(100 + n))
    (root / "big.bin").write_bytes(os.urandom(_transfer.DEFER_BELOW + 1))


@pytest.mark.parametrize("kind", ["outputs", "inputs for another node"])
def test_small_files_are_synced_once_before_the_manifest_large_ones_each(
    tmp_path: Path,
    make_spec: Callable[..., JobSpec],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    if kind == "outputs":
        _small_and_large(data / "out")
        manifest, copies = manifest_dir(data) / OUTPUTS, elsewhere
        waits = _DiskWaits(monkeypatch, manifest)
        spec = make_spec(stage_out=[{"source": "out", "dest": str(elsewhere)}])
        report = stage_out(spec, data, succeeded=True, retry=Retry(attempts=1))
    else:  # the default: a job on another node may start after this machine crashed
        _small_and_large(elsewhere)
        manifest, copies = manifest_dir(data) / INPUTS, data / "in"
        waits = _DiskWaits(monkeypatch, manifest)
        spec = make_spec(stage_in=[{"source": str(elsewhere), "dest": "in"}])
        report = stage_in(spec, data, retry=Retry(attempts=1))

    assert len(report.files) == 31 and manifest.exists()
    assert waits.manifest_then == [False]  # synced before the manifest named a file
    assert waits.synced == [{copies / f"d{n}" for n in range(3)}]  # one call, every directory
    assert _transfer.DEFER_BELOW + 1 in waits.fsyncs  # the large file had its own fsync...
    assert not [size for size in waits.fsyncs if 100 <= size < 130]  # ...no small file did


def test_inputs_for_this_machine_wait_for_no_disk_and_a_torn_copy_is_copied_again(
    tmp_path: Path, make_spec: Callable[..., JobSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local job's inputs need not outlive this machine, so their copies are not synced: a
    copy a crash tore (its blocks never written: zeros) is found by the job wrapper's check
    and by the next stage-in (before every attempt), which copies it again."""
    source, data = tmp_path / "source", tmp_path / "data"
    _small_and_large(source)
    manifest = manifest_dir(data) / INPUTS
    waits = _DiskWaits(monkeypatch, manifest)
    spec = make_spec(stage_in=[{"source": str(source), "dest": "in"}])
    report = stage_in(spec, data, retry=Retry(attempts=1), durable=False)

    assert len(report.files) == 31 and manifest.exists()
    assert waits.synced in ([], [set()])  # no syncfs of a directory...
    copies = [size for size in waits.fsyncs if 100 <= size < 130]
    assert not copies and _transfer.DEFER_BELOW + 1 not in waits.fsyncs  # ...no fsync of a copy

    torn = data / "in" / "big.bin"
    torn.write_bytes(bytes(torn.stat().st_size))  # same size, blocks lost
    (problem,) = verify_inputs.problems(manifest)  # the job wrapper would not run the command
    assert "big.bin: checksum mismatch" in problem
    again = stage_in(spec, data, retry=Retry(attempts=1), durable=False)
    assert again.bytes_copied == torn.stat().st_size  # only the torn file, copied again
    assert torn.read_bytes() == (source / "big.bin").read_bytes()
    assert verify_inputs.problems(manifest) == []


def test_a_direct_transfer_is_durable_on_its_own(tmp_path: Path) -> None:
    from hpcbridge.staging._urls import locate  # noqa: PLC0415

    (tmp_path / "s").write_bytes(b"small")
    task = _transfer.FileTask(locate(str(tmp_path / "s"), tmp_path), locate("d", tmp_path), 5)
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def spy_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", spy_fsync)
        _transfer.transfer(task, "sha256", Retry(attempts=1))
    assert len(fsyncs) == 1 and (tmp_path / "d").read_bytes() == b"small"


def test_sync_filesystems_takes_each_file_system_once_and_skips_missing_paths(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sync_filesystems([tmp_path / "a", tmp_path / "b", tmp_path / "gone", Path("/proc")])


class _ShortWrites:
    """A destination that takes at most half of each write, as a kernel may."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.cut = 0

    def write(self, data: memoryview) -> int:
        taken = len(data) // 2 if len(data) > 4096 else len(data)
        self.cut += taken < len(data)
        self.data += data[:taken]
        return taken


def test_a_large_file_streams_through_one_buffer_and_every_byte_is_written(
    tmp_path: Path,
) -> None:
    """Past one block, a local file is read into a reused buffer; a write that takes only
    part of a block is continued, so the copy and its digest are of every byte."""
    payload = os.urandom(2 * _transfer.BLOCK + 12345)
    (tmp_path / "big.bin").write_bytes(payload)
    out = _ShortWrites()
    hasher = hashlib.sha256()
    with open(tmp_path / "big.bin", "rb", buffering=0) as src:
        copied = _transfer._pump(src, out, hasher, None, len(payload))
    assert copied == len(payload) and bytes(out.data) == payload
    assert hasher.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert out.cut >= 3  # each block's write was cut, and continued
