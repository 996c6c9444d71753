"""A large local input is copied by the kernel and hashed from what landed; where the kernel
cannot copy, the buffered copy takes over, with the same digest."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.spec import JobSpec
from hpcbridge.staging import ChecksumMismatchError, Retry, _kernel_copy, _transfer, stage_in

FAST = Retry(attempts=1)


def _payload(tmp_path: Path) -> tuple[Path, bytes]:
    payload = os.urandom(2 * _transfer.BLOCK + 12345)  # two whole blocks and a short one
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    return source, payload


def _spec(make_spec: Callable[..., JobSpec], source: Path, payload: bytes) -> JobSpec:
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    return make_spec(stage_in=[{"source": str(source), "dest": "big.bin", "checksum": digest}])


def _count_kernel_copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    lengths: list[int] = []
    real = os.copy_file_range

    def spy(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        copied = real(src, dst, count, offset_src, offset_dst)
        lengths.append(copied)
        return copied

    monkeypatch.setattr(os, "copy_file_range", spy)
    return lengths


def test_a_large_input_is_copied_by_the_kernel_and_resumed_from_its_part(
    tmp_path: Path, make_spec: Callable[..., JobSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, payload = _payload(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    kept = _transfer.BLOCK // 2
    (data / "big.bin.part").write_bytes(payload[:kept])  # an earlier try stopped here
    lengths = _count_kernel_copies(monkeypatch)
    report = stage_in(_spec(make_spec, source, payload), data, retry=FAST)
    assert (data / "big.bin").read_bytes() == payload  # and the expected digest was enforced
    assert report.bytes_copied == len(payload) - kept == sum(lengths)
    assert not (data / "big.bin.part").exists()


def test_the_digest_is_of_what_landed_in_the_destination(
    tmp_path: Path, make_spec: Callable[..., JobSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block that lands damaged (here: one byte flipped after the kernel wrote it) fails
    the stage with checksum_mismatch, though the source was read intact."""
    source, payload = _payload(tmp_path)
    real = os.copy_file_range

    def damaging(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        copied = real(src, dst, count, offset_src, offset_dst)
        if offset_dst == 0 and copied:
            os.pwrite(dst, bytes([payload[7] ^ 1]), 7)
        return copied

    monkeypatch.setattr(os, "copy_file_range", damaging)
    with pytest.raises(ChecksumMismatchError):
        stage_in(_spec(make_spec, source, payload), tmp_path / "data", retry=FAST)


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL])
def test_where_the_kernel_cannot_copy_the_buffered_copy_takes_over(
    tmp_path: Path,
    make_spec: Callable[..., JobSpec],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    source, payload = _payload(tmp_path)

    def unsupported(*args: int) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    data = tmp_path / "data"
    report = stage_in(_spec(make_spec, source, payload), data, retry=FAST)
    assert (data / "big.bin").read_bytes() == payload
    assert report.bytes_copied == len(payload)


def test_a_kernel_copy_that_fails_midway_is_an_error_not_a_short_file(tmp_path: Path) -> None:
    source, payload = _payload(tmp_path)
    part = tmp_path / "out.part"
    part.touch()
    calls = 0
    real = os.copy_file_range

    def failing_second(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, count, offset_src, offset_dst)

    with pytest.MonkeyPatch.context() as patch, open(source, "rb") as src:
        patch.setattr(os, "copy_file_range", failing_second)
        reader = os.open(part, os.O_RDONLY)
        try:
            with pytest.raises(OSError, match="No space"):
                _kernel_copy.copy_in_kernel(
                    src.fileno(),
                    str(part),
                    reader,
                    0,
                    hashlib.sha256(),
                    _transfer.BLOCK,
                    lambda position, length: None,
                )
        finally:
            os.close(reader)
    assert len(payload) > part.stat().st_size  # left as a .part: never renamed into place
