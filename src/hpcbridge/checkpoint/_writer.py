"""A file writer whose hash trails right behind its writes.

A helper thread reads back, from the page cache, what has been written so far and hashes
it. Hashing thus overlaps the writes while cores are free, and the remainder overlaps the
final ``fsync``, when the process only waits for the disk; the caller's buffers are never
read after ``write()`` returns, so mutable ones are safe.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ._hashing import CHUNK, Hasher, new_hasher

_BUFFER = 1 << 20
"""Small writes (pickle, JSON) are gathered to 1 MiB before they reach the kernel."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a closed writer knows; still valid at commit if size and mtime are unchanged."""

    size: int
    digest: str
    mtime_ns: int


def _read_at(fd: int, into: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [into], offset)  # straight into our buffer, no allocation
    data = os.pread(fd, len(into), offset)
    into[: len(data)] = data
    return len(data)


class _TrailingHasher:
    """Hashes bytes ``[0, written)`` of ``fd`` in a thread as ``written`` grows."""

    def __init__(self, fd: int, hasher: Hasher) -> None:
        self._fd = fd
        self._hasher = hasher
        self._written = 0
        self._closing = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ckpt-hash", daemon=True)
        self._thread.start()

    def advance(self, written: int) -> None:
        with self._changed:
            self._written = written
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join()

    def finish(self) -> str:
        """Wait until everything written so far is hashed; return the digest."""
        self.stop()
        if self._error is not None:
            raise self._error
        return self._hasher.hexdigest()

    def _run(self) -> None:
        buffer = memoryview(bytearray(CHUNK))
        position = 0
        try:
            while True:
                with self._changed:
                    while position >= self._written and not self._closing:
                        self._changed.wait()
                    target = self._written
                if position >= target:
                    return
                while position < target:
                    count = _read_at(self._fd, buffer[: min(CHUNK, target - position)], position)
                    if count <= 0:
                        raise OSError(f"short read at {position} while hashing")
                    self._hasher.update(buffer[:count])
                    position += count
        except BaseException as exc:  # reported by finish() in the writing thread
            self._error = exc


class FileWriter:
    """Binary, write-only file object for one new checkpoint file."""

    def __init__(self, path: Path, algorithm: str) -> None:
        self.path = path
        # Read access too: the trailing hasher reads back through the same descriptor.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self._algorithm = algorithm
        self._hash: _TrailingHasher | None = None  # started once data reaches the kernel
        self._buffer = bytearray()
        self._size = 0
        self.result: Written | None = None

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def tell(self) -> int:
        return self._size + len(self._buffer)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError(f"write to closed checkpoint file {self.path.name}")
        view = memoryview(data).cast("B")
        count = len(view)
        if len(self._buffer) + count < _BUFFER:
            self._buffer += view
            return count
        self._drain()
        self._emit(view)
        return count

    def flush(self) -> None:
        self._drain()

    def _drain(self) -> None:
        if self._buffer:
            self._emit(memoryview(self._buffer))
            self._buffer = bytearray()

    def _emit(self, view: memoryview) -> None:
        if self._hash is None:
            self._hash = _TrailingHasher(self._fd, new_hasher(self._algorithm))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written
            self._hash.advance(self._size)

    def close(self) -> None:
        """Flush, fsync and close; the fsync runs while the hash catches up. Idempotent."""
        if self.closed:
            return
        try:
            if self._hash is None:
                # A small file that never left the buffer: no thread, hash it right here.
                hasher = new_hasher(self._algorithm, parallel=False)
                hasher.update(self._buffer)
                view = memoryview(self._buffer)
                while view:
                    view = view[os.write(self._fd, view) :]
                self._size = len(self._buffer)
                self._buffer = bytearray()
                os.fsync(self._fd)
                digest = hasher.hexdigest()
            else:
                self._drain()
                os.fsync(self._fd)
                digest = self._hash.finish()
            self.result = Written(self._size, digest, os.fstat(self._fd).st_mtime_ns)
        finally:
            if self._hash is not None:
                self._hash.stop()  # never close the descriptor under the reading thread
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
