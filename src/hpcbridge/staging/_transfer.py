"""One file from a source to a destination, hashed as it streams, retried with backoff.

A local destination is written as ``<name>.part`` and renamed only once complete and
checked, so a full disk never leaves a partial file under the final name; a later try
resumes a ``.part`` from where it stopped (hashing what is already there) where the source
can seek. How much of a copy is on disk before it is renamed into place is the caller's
choice (``Durability``). A large local file is copied by the kernel (``_kernel_copy``).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fsspec.implementations.local import LocalFileSystem

from hpcbridge.checkpoint._hashing import Hasher
from hpcbridge.staging._digest import digest_file, new_hasher, split
from hpcbridge.staging._errors import ChecksumMismatchError, StagingError
from hpcbridge.staging._kernel_copy import copy_in_kernel
from hpcbridge.staging._manifest import FileRecord
from hpcbridge.staging._urls import Location

BLOCK = 8 << 20
SMALL = 1 << 20
"""Local files smaller than this are copied by ``_copy_small``."""
DEFER_BELOW = 1 << 20
"""With ``durable="batch"`` only files smaller than this skip their own fsync: syncing a
large file alone leaves others' dirty data on a shared file system out of its wait."""

Durability = Literal["each", "batch", "none"]
"""``each``: every file is fsynced before it is renamed into place. ``batch``: files
smaller than ``DEFER_BELOW`` are left to the caller, who makes a whole stage durable at
once (``sync_filesystems``) before its manifest names them. ``none``: nothing waits for the
disk: for copies that need not outlive this machine (``stage_in``'s ``durable=False``).
Waiting for the disk made a 2 GiB input take twice as long as ``cp``."""
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
    *,
    durable: Durability = "each",
) -> tuple[FileRecord, int]:
    """Copy with retries; return the record and the bytes that crossed the wire."""
    if task.expected is not None:
        algorithm = split(task.expected)[0]
    last: StagingError | None = None
    for delay in [*retry.delays(), None]:
        try:
            return _copy_once(task, algorithm, progress, durable=durable)
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


def _copy_once(
    task: FileTask, algorithm: str, progress: Progress | None, *, durable: Durability = "each"
) -> tuple[FileRecord, int]:
    hasher = new_hasher(algorithm)
    if not task.dest.local:
        with (
            task.source.fs.open(task.source.path, "rb") as src,
            task.dest.fs.open(task.dest.path, "wb") as out,
        ):
            copied = _pump(src, out, hasher, progress, task.size)
        record = _checked(task, algorithm, hasher, copied)
        if task.dest.fs.size(task.dest.path) != copied:
            raise StagingError(f"{task.dest.url}: the stored object is not {copied} bytes long")
        return record, copied
    part = task.dest.path + ".part"
    if type(task.source.fs) is LocalFileSystem and task.size is not None and task.size < SMALL:
        record = _copy_small(task, algorithm, hasher, part, sync=durable == "each")
        if progress is not None:
            progress(record.size)
        return record, record.size
    with _open_part(part) as out:  # unbuffered: each write is one system call
        _lock(out.fileno(), task)
        offset = _resumable(out.fileno(), task.size, hasher)
        writeback = durable != "none"  # started early only where an fsync will wait for it
        with _open_source(task.source) as src:
            copied = _copy_local(src, out, part, offset, hasher, progress, task.size, writeback)
        if durable == "each" or (durable == "batch" and offset + copied >= DEFER_BELOW):
            os.fsync(out.fileno())
        record = _checked(task, algorithm, hasher, offset + copied)
        os.replace(part, task.dest.path)  # still the only writer: the lock is held
    return record, copied


def _copy_local(
    src: Any,
    out: io.FileIO,
    part: str,
    offset: int,
    hasher: Hasher,
    progress: Progress | None,
    size: int | None,
    writeback: bool,
) -> int:
    """From ``src`` at ``offset`` to its end into ``part`` (open as ``out``, appending):
    a large local file by the kernel where it can, anything else through a buffer."""
    remaining = _remaining(size, offset)
    if isinstance(src, io.FileIO) and (remaining is None or remaining >= BLOCK):
        fd = out.fileno()

        def after_block(position: int, length: int) -> None:
            if writeback:
                _start_writeback(fd, position, length)
            if progress is not None:
                progress(length)

        copied = copy_in_kernel(src.fileno(), part, fd, offset, hasher, BLOCK, after_block)
        if copied is not None:
            return copied
    if offset:
        src.seek(offset)
    return _pump(src, out, hasher, progress, remaining, writeback=writeback)


def _copy_small(
    task: FileTask, algorithm: str, hasher: Hasher, part: str, *, sync: bool
) -> FileRecord:
    """A small local file through raw descriptors, read in one call: among many small
    files, file objects and a read to find the end cost a quarter of the stage. A
    ``.part`` an earlier try left is started afresh, not resumed."""
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        out = os.open(part, flags, 0o644)
    except FileNotFoundError:
        Path(part).parent.mkdir(parents=True, exist_ok=True)
        out = os.open(part, flags, 0o644)
    try:
        _lock(out, task)
        os.ftruncate(out, 0)  # only now that no one else writes it
        src = os.open(task.source.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size, want = 0, (task.size or 0) + 1
            while block := os.read(src, want):
                hasher.update(block)
                _write_all_fd(out, block)
                size += len(block)
                if len(block) < want:  # a short read of a regular file is its end
                    break
                want = BLOCK  # it grew since it was listed: _checked will say so
        finally:
            os.close(src)
        if sync:
            os.fsync(out)
        record = _checked(task, algorithm, hasher, size)
        os.replace(part, task.dest.path)  # still the only writer: the lock is held
    finally:
        os.close(out)
    return record


def _write_all_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open_part(part: str) -> Any:
    """``part`` for appending, its directory made first where it is missing."""
    try:
        return open(part, "a+b", buffering=0)
    except FileNotFoundError:
        Path(part).parent.mkdir(parents=True, exist_ok=True)
        return open(part, "a+b", buffering=0)


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
    if have == 0:
        return 0
    if size is None or have > size:
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


def _open_source(source: Location) -> Any:
    """A local source as a plain unbuffered file (fsspec's local file object costs more
    than copying a small file); any other, subclasses of the local one too, through its
    filesystem."""
    if type(source.fs) is LocalFileSystem:
        return open(source.path, "rb", buffering=0)
    return source.fs.open(source.path, "rb")


def _remaining(size: int | None, offset: int) -> int | None:
    return None if size is None else max(0, size - offset)


def _pump(
    src: Any,
    out: Any,
    hasher: Hasher,
    progress: Progress | None,
    expected: int | None = None,
    *,
    writeback: bool = True,
) -> int:
    """Copy to the end of ``src``, hashing what is written; reads are sized to what is
    ``expected``, so a small file costs a small read (plus one at its end), not an 8 MiB
    buffer. A large local file is read into one buffer, reused: a fresh 8 MiB object per
    block costs its page faults again each time."""
    if isinstance(src, io.FileIO) and (expected is None or expected >= BLOCK):
        return _pump_into(src, out, hasher, progress, writeback)
    total = 0
    read, update = src.read, hasher.update
    size = BLOCK if expected is None else min(BLOCK, expected + 1)
    while block := read(size):
        update(block)
        _write_all(out, block)
        total += len(block)
        if progress is not None:
            progress(len(block))
        size = BLOCK
    return total


def _pump_into(
    src: io.FileIO, out: Any, hasher: Hasher, progress: Progress | None, writeback: bool
) -> int:
    """Two buffers, taking turns: a block is hashed on a thread of its own while it is
    written and the next one read (both release the interpreter lock), so the slower of
    hashing and copying sets the pace, not their sum. Blocks are hashed in order: each
    waits for the one before, which also frees that block's buffer for the next read."""
    buffers = (memoryview(bytearray(BLOCK)), memoryview(bytearray(BLOCK)))
    total = 0
    flush = _early_writeback(out) if writeback else _no_writeback
    hashed: Future[object] | None = None
    turn = 0
    with ThreadPoolExecutor(1, "hb-stage-hash") as hashing:
        try:
            while got := src.readinto(buffers[turn]):
                block = buffers[turn][:got]
                turn ^= 1
                if hashed is not None:
                    hashed.result()
                hashed = hashing.submit(hasher.update, block)
                _write_all(out, block)
                flush(got)
                total += got
                if progress is not None:
                    progress(got)
        finally:
            if hashed is not None:
                hashed.result()
    return total


def _no_writeback(length: int) -> None:
    """Dirty pages left to the kernel's own writeback."""


def _early_writeback(out: Any) -> Callable[[int], None]:
    """``_start_writeback`` after each block written to a local destination."""
    if not isinstance(out, io.FileIO):
        return _no_writeback
    fd = out.fileno()
    position = out.tell()

    def flush(length: int) -> None:
        nonlocal position
        _start_writeback(fd, position, length)
        position += length

    return flush


def _start_writeback(fd: int, position: int, length: int) -> None:
    """Start writing a block to disk and let it leave the page cache (``POSIX_FADV_DONTNEED``
    on dirty pages starts their writeback without waiting), so that the fsync at the end
    waits for the last blocks only, and a large copy does not push other files out of the
    page cache."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):  # advice only
            os.posix_fadvise(fd, position, length, os.POSIX_FADV_DONTNEED)


def _write_all(out: Any, data: bytes | memoryview) -> None:
    """All of ``data``: an unbuffered file's write may take only part of it."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written if written is not None else len(view) :]


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
