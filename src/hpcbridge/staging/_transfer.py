"""One file from a source to a destination, hashed as it streams, retried with backoff.

A local destination is written as ``<name>.part`` and renamed only once complete and
checked, so a crash or a full disk never leaves a partial file under the final name; a
later try resumes a ``.part`` from where it stopped (hashing what is already there) where
the source can seek.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpcbridge.checkpoint._hashing import Hasher
from hpcbridge.staging._digest import digest_file, new_hasher, split
from hpcbridge.staging._errors import ChecksumMismatchError, StagingError
from hpcbridge.staging._manifest import FileRecord
from hpcbridge.staging._urls import Location

BLOCK = 8 << 20
Progress = Callable[[int], None]


class Meter:
    """Bytes of a stage so far and in all, for a progress display; called with each block
    from the transfer threads."""

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self._lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self._lock:
            self.done += count


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 3
    initial_s: float = 0.5
    factor: float = 2.0

    def delays(self) -> list[float]:
        return [self.initial_s * self.factor**n for n in range(self.attempts - 1)]


@dataclass(frozen=True, slots=True)
class FileTask:
    source: Location
    dest: Location
    size: int | None
    expected: str | None = None
    """``<algorithm>:<hex>`` from the spec, enforced."""
    identity: str | None = None
    """The source's version as its storage reports it (mtime, ETag), for the cache."""


def transfer(
    task: FileTask,
    algorithm: str,
    retry: Retry,
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[FileRecord, int]:
    """Copy with retries; return the record and the bytes that crossed the wire."""
    if task.expected is not None:
        algorithm = split(task.expected)[0]
    last: StagingError | None = None
    for delay in [*retry.delays(), None]:
        try:
            return _copy_once(task, algorithm, progress)
        except ChecksumMismatchError as exc:
            last = exc
            _discard(task.dest)  # a wrong copy is never resumed
        except StagingError as exc:
            last = exc
        except Exception as exc:  # fsspec and its clients raise many kinds
            last = StagingError(
                f"cannot copy {task.source.url} to {task.dest.url}: {exc}",
                hint="check that the storage is reachable and has room",
            )
        if delay is not None:
            sleep(delay)
    assert last is not None
    raise last


def _copy_once(task: FileTask, algorithm: str, progress: Progress | None) -> tuple[FileRecord, int]:
    hasher = new_hasher(algorithm)
    if not task.dest.local:
        with (
            task.source.fs.open(task.source.path, "rb") as src,
            task.dest.fs.open(task.dest.path, "wb") as out,
        ):
            copied = _pump(src, out, hasher, progress)
        record = _checked(task, algorithm, hasher, copied)
        if task.dest.fs.size(task.dest.path) != copied:
            raise StagingError(f"{task.dest.url}: the stored object is not {copied} bytes long")
        return record, copied
    part = Path(task.dest.path + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    with open(part, "a+b") as out:
        _lock(out.fileno(), task)
        offset = _resumable(out.fileno(), task.size, hasher)
        with task.source.fs.open(task.source.path, "rb") as src:
            if offset:
                src.seek(offset)
            copied = _pump(src, out, hasher, progress)
        out.flush()
        os.fsync(out.fileno())
        record = _checked(task, algorithm, hasher, os.fstat(out.fileno()).st_size)
        os.replace(part, task.dest.path)  # still the only writer: the lock is held
    return record, copied


def _checked(task: FileTask, algorithm: str, hasher: Hasher, size: int) -> FileRecord:
    digest = f"{algorithm}:{hasher.hexdigest()}"
    if task.size is not None and size != task.size:
        raise StagingError(
            f"{task.source.url}: copied {size} bytes of {task.size}; the transfer was cut short"
        )
    if task.expected is not None and digest != _normal(task.expected):
        raise ChecksumMismatchError(task.source.url, _normal(task.expected), digest)
    return FileRecord(task.dest.path, task.source.url, size, digest)


def _lock(fd: int, task: FileTask) -> None:
    """One writer per destination, even across processes (a control plane handing over
    leadership while its stage still runs)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise StagingError(
            f"{task.dest.url}: another process is writing it", hint="it is tried again"
        ) from exc


def _resumable(fd: int, size: int | None, hasher: Hasher) -> int:
    """Bytes of an earlier ``.part`` to keep (hashed into ``hasher``); 0 starts afresh."""
    have = os.fstat(fd).st_size
    if size is None or have > size or have == 0:
        os.ftruncate(fd, 0)
        return 0
    offset = 0
    while offset < have:
        block = os.pread(fd, min(BLOCK, have - offset), offset)
        if not block:
            break
        hasher.update(block)
        offset += len(block)
    return offset


def _pump(src: object, out: object, hasher: object, progress: Progress | None) -> int:
    total = 0
    read = src.read  # type: ignore[attr-defined]
    write = out.write  # type: ignore[attr-defined]
    update = hasher.update  # type: ignore[attr-defined]
    while block := read(BLOCK):
        update(block)
        write(block)
        total += len(block)
        if progress is not None:
            progress(len(block))
    return total


def _discard(dest: Location) -> None:
    if dest.local:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dest.path + ".part")


def _normal(checksum: str) -> str:
    algorithm, digest = split(checksum)
    return f"{algorithm}:{digest}"


def still_valid(record: FileRecord) -> bool:
    """A local file a previous run of this stage recorded still has its size and digest."""
    path = Path(record.path)
    try:
        if path.stat().st_size != record.size:
            return False
        algorithm, digest = split(record.digest)
        return digest_file(path, algorithm)[1] == digest
    except (OSError, StagingError):
        return False
