"""1,000 transfers through a source that corrupts, truncates and drops connections: every
copy is either byte-identical or an explicit error, after at most three tries."""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from hpcbridge.staging import ChecksumMismatchError, Retry, StagingError
from hpcbridge.staging._transfer import FileTask, transfer
from hpcbridge.staging._urls import Location

FILES = 1000
FAULT_RATE = 0.1  # of opens, for each kind of fault


class FlakySource(LocalFileSystem):  # type: ignore[misc]
    """Local files read back with faults: a flipped byte, a short read, a dropped link."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.opens: dict[str, int] = {}

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        self.opens[path] = self.opens.get(path, 0) + 1
        data = Path(path).read_bytes()
        roll = self.random.random()
        if roll < FAULT_RATE:
            flipped = bytearray(data)
            flipped[self.random.randrange(len(data))] ^= 1 << self.random.randrange(8)
            return io.BytesIO(bytes(flipped))
        if roll < 2 * FAULT_RATE:
            return io.BytesIO(data[: self.random.randrange(len(data))])
        if roll < 3 * FAULT_RATE:
            return _Dropping(data[: self.random.randrange(len(data))])
        return io.BytesIO(data)


class _Dropping(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise ConnectionResetError("connection reset by peer")
        return chunk


def test_no_silent_corruption_under_faults(tmp_path: Path) -> None:
    source_dir, dest_dir = tmp_path / "src", tmp_path / "dst"
    source_dir.mkdir()
    dest_dir.mkdir()
    flaky = FlakySource(seed=11)
    local = LocalFileSystem()
    retry = Retry(attempts=3, initial_s=0.0)
    copied = failed = 0
    for n in range(FILES):
        payload = os.urandom(256 + n)
        path = source_dir / f"f{n}"
        path.write_bytes(payload)
        expected = "sha256:" + hashlib.sha256(payload).hexdigest()
        dest = dest_dir / f"f{n}"
        task = FileTask(
            Location(str(path), flaky, str(path)),
            Location(str(dest), local, str(dest)),
            len(payload),
            expected,
        )
        try:
            record, _ = transfer(task, "sha256", retry, sleep=lambda _: None)
        except (ChecksumMismatchError, StagingError) as exc:
            failed += 1
            assert not dest.exists(), exc.message  # nothing under the final name
            assert str(path) in exc.message
            continue
        copied += 1
        assert dest.read_bytes() == payload  # never a wrong file marked complete
        assert record.digest == expected
    assert max(flaky.opens.values()) <= 3  # bounded tries
    assert copied + failed == FILES and copied > 0.95 * FILES
    assert sum(flaky.opens.values()) > FILES  # the faults did happen and were retried
