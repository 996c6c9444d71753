"""A file writer whose hash trails right behind its writes.

As soon as an 8 MiB piece of the file (see ``_hashing``) is completely written, worker
threads read it back from the page cache and hash it, one piece per thread at a time: the
hashing runs in parallel with the writes on the cores the writing thread leaves free, and
what remains runs on all of them in parallel with the final ``fsync``, when the process
only waits for the disk. The slower of writing and hashing sets the pace, not their sum.
The caller's buffers are never read after ``write()`` returns, so mutable ones are safe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ._hashing import PIECE, TREE, PieceWorkers, digest_bytes, hash_threads

_BUFFER = 1 << 20
"""Small writes (pickle, JSON) are gathered to 1 MiB before they reach the kernel."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a closed writer knows; still valid at commit if size and mtime are unchanged."""

    size: int
    digest: str
    mtime_ns: int


class FileWriter:
    """Binary, write-only file object for one new checkpoint file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Read access too: the hashing threads read back through the same descriptor.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self._workers: PieceWorkers | None = None  # started once a piece is complete
        self._handed_over = 0  # bytes [0, this) are hashed or queued for hashing
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
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written
            self._hand_over(self._size - self._size % PIECE)

    def _hand_over(self, end: int) -> None:
        """Queue the pieces up to byte ``end`` (all written) for hashing."""
        if end <= self._handed_over:
            return
        if self._workers is None:
            # One core stays with the writes: the sooner they are done, the sooner the
            # disk is busy with the fsync (dirty pages mostly wait for it).
            self._workers = PieceWorkers(self._fd, hash_threads() - 1)
        while self._handed_over < end:
            length = min(PIECE, end - self._handed_over)
            self._workers.add(self._handed_over, length)
            self._handed_over += length

    def close(self) -> None:
        """Flush, fsync and close; the fsync runs while the hash catches up. Idempotent."""
        if self.closed:
            return
        try:
            if self._size == 0:
                # A small file that never left the buffer: no threads, hash it right here.
                digest = digest_bytes(TREE, self._buffer)
                view = memoryview(self._buffer)
                while view:
                    view = view[os.write(self._fd, view) :]
                self._size = len(self._buffer)
                self._buffer = bytearray()
                os.fsync(self._fd)
            else:
                self._drain()
                self._hand_over(self._size)  # the last, partial piece
                workers = self._workers
                if workers is not None and self._size > PIECE:
                    workers.grow(hash_threads())  # this thread now only waits for the disk
                os.fsync(self._fd)
                digest = workers.finish() if workers is not None else digest_bytes(TREE, b"")
            self.result = Written(self._size, digest, os.fstat(self._fd).st_mtime_ns)
        finally:
            if self._workers is not None:
                self._workers.stop()  # never close the descriptor under a reading thread
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
