"""A file writer that hashes what it writes, so a save never reads its own data back."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ._hashing import new_hasher

_BUFFER = 1 << 20
"""Small writes (pickle, JSON) are gathered to 1 MiB before they reach the kernel."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a closed writer knows; still valid at commit if size and mtime are unchanged."""

    size: int
    digest: str
    mtime_ns: int


class FileWriter:
    """Binary, write-only file object; hashing of each large piece overlaps its ``write``."""

    def __init__(self, path: Path, algorithm: str, pool: ThreadPoolExecutor) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._hasher = new_hasher(algorithm, parallel=False)
        self._pool = pool
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
        # The caller's buffer is only borrowed until write() returns, so both the hash and
        # the write finish here; they merely run side by side.
        hashed = self._pool.submit(self._hasher.update, view)
        rest = view
        try:
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        finally:
            hashed.result()
        self._size += len(view)

    def close(self) -> None:
        """Flush, fsync and close; idempotent."""
        if self.closed:
            return
        try:
            self._drain()
            os.fsync(self._fd)
            mtime_ns = os.fstat(self._fd).st_mtime_ns
            self.result = Written(self._size, self._hasher.hexdigest(), mtime_ns)
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
