"""Content digests of checkpoint files.

Every manifest this version writes uses ``sha256-tree-8MiB``: the file is cut into 8 MiB
pieces (the last one may be shorter; an empty file has none), and the digest is the
SHA-256 of the concatenated binary SHA-256 digests of the pieces::

    leaves = b"".join(hashlib.sha256(piece).digest() for piece in pieces)
    digest = hashlib.sha256(leaves).hexdigest()

That needs only the standard library, so any machine can verify any checkpoint, and the
pieces are independent, so several threads hash one file at once (``hashlib`` releases
the GIL on large buffers): one SHA-256 stream would be slower than a fast disk.

Manifests of version 1 named ``sha256`` (SHA-256 of the whole file) or ``blake3``; both
are still verified, BLAKE3 only where the optional ``blake3`` package is installed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

_blake3: Any
try:
    from blake3 import blake3 as _blake3
except ImportError:  # the SDK must work with the standard library alone
    _blake3 = None

TREE = "sha256-tree-8MiB"
"""The algorithm of every manifest this version writes."""

PIECE = 8 << 20
"""The piece size of :data:`TREE`: part of the digest's definition, never change it."""

READ = 1 << 20
"""Pieces are read back and hashed in 1 MiB reads: a buffer that stays in the CPU cache."""

MAX_THREADS = 8
"""Eight SHA-256 threads outpace any one file system client; more would only use memory."""


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def hash_threads() -> int:
    """Threads that hash one file: the cores this process may run on, up to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def can_verify(algorithm: str) -> bool:
    """Whether digests of ``algorithm`` can be computed here."""
    return algorithm in (TREE, "sha256") or (algorithm == "blake3" and _blake3 is not None)


def cannot_verify_reason(algorithm: str) -> str:
    if algorithm == "blake3":
        return (
            "its manifest has BLAKE3 digests only (written by an earlier version of the SDK) "
            "and the blake3 package is not installed here: file sizes checked, content not "
            "verified; `pip install blake3` to verify it"
        )
    return (
        f"its manifest has {algorithm!r} digests, which this version cannot compute: "
        "file sizes checked, content not verified"
    )


def _stream_hasher(algorithm: str) -> Hasher:
    """A hasher for the version 1 algorithms, which hash the file as one stream."""
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake3" and _blake3 is not None:
        hasher: Hasher = _blake3(max_threads=_blake3.AUTO)
        return hasher
    raise ValueError(f"hash algorithm {algorithm!r} is not available here")


def tree_root(leaves: list[bytes]) -> str:
    return hashlib.sha256(b"".join(leaves)).hexdigest()


def pieces(size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of each piece of a file of ``size`` bytes."""
    return [(offset, min(PIECE, size - offset)) for offset in range(0, size, PIECE)]


def digest_bytes(algorithm: str, data: bytes | bytearray | memoryview) -> str:
    """The digest of in-memory content."""
    view = memoryview(data).cast("B")
    if algorithm != TREE:
        hasher = _stream_hasher(algorithm)
        hasher.update(view)
        return hasher.hexdigest()
    parts = pieces(len(view))

    def leaf(part: tuple[int, int]) -> bytes:
        return hashlib.sha256(view[part[0] : part[0] + part[1]]).digest()

    if len(parts) <= 1:
        return tree_root([leaf(part) for part in parts])
    with ThreadPoolExecutor(min(hash_threads(), len(parts)), "ckpt-hash") as pool:
        return tree_root(list(pool.map(leaf, parts)))


def read_exactly(fd: int, into: memoryview, offset: int) -> None:
    """Fill ``into`` from ``offset`` of ``fd``; a file shorter than that raises OSError."""
    done = 0
    while done < len(into):
        if hasattr(os, "preadv"):  # straight into our buffer, no allocation
            count = os.preadv(fd, [into[done:]], offset + done)
        else:
            data = os.pread(fd, len(into) - done, offset + done)
            into[done : done + len(data)] = data
            count = len(data)
        if count <= 0:
            raise OSError(f"file ended at byte {offset + done} while being hashed")
        done += count


def hash_piece(fd: int, offset: int, length: int, buffer: memoryview) -> bytes:
    """The SHA-256 digest of one piece, read through ``buffer`` (at least 1 byte long)."""
    hasher = hashlib.sha256()
    end = offset + length
    while offset < end:
        view = buffer[: min(len(buffer), end - offset)]
        read_exactly(fd, view, offset)
        hasher.update(view)
        offset += len(view)
    return hasher.digest()


class PieceWorkers:
    """Threads that hash pieces of ``fd`` as they are handed over; the leaves of a tree.

    :meth:`add` may be called while the workers run (a writer hands over each piece as
    soon as it is completely written); :meth:`grow` adds threads (a writer leaves a core
    to its own writes until it waits for the fsync); :meth:`finish` waits for every piece.
    """

    def __init__(self, fd: int, threads: int) -> None:
        self._fd = fd
        self._leaves: list[bytes | None] = []
        self._todo: deque[tuple[int, int, int]] = deque()  # (index, offset, length)
        self._closing = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.grow(threads)

    def grow(self, threads: int) -> None:
        """Run at least ``threads`` threads (at least one)."""
        while len(self._threads) < max(1, threads):
            thread = threading.Thread(target=self._run, name="ckpt-hash", daemon=True)
            thread.start()
            self._threads.append(thread)

    def add(self, offset: int, length: int) -> None:
        with self._changed:
            index = len(self._leaves)
            self._leaves.append(None)
            self._todo.append((index, offset, length))
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    def finish(self) -> str:
        """Wait until every piece added is hashed; return the tree digest."""
        self.stop()
        if self._error is not None:
            raise self._error
        leaves = [leaf for leaf in self._leaves if leaf is not None]
        if len(leaves) != len(self._leaves):
            raise RuntimeError("a piece was left unhashed")
        return tree_root(leaves)

    def _run(self) -> None:
        buffer = memoryview(bytearray(READ))
        while True:
            with self._changed:
                while not self._todo and not self._closing:
                    self._changed.wait()
                if not self._todo or self._error is not None:
                    return
                index, offset, length = self._todo.popleft()
            try:
                self._leaves[index] = hash_piece(self._fd, offset, length, buffer)
            except BaseException as exc:  # reported by finish() in the calling thread
                with self._changed:
                    self._error = self._error or exc
                    self._todo.clear()
                return


def hash_file(path: Path, algorithm: str, *, fsync: bool = False) -> tuple[int, str]:
    """Return ``(size, hexdigest)`` of a file; with ``fsync`` also flush it, overlapped."""
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        if algorithm != TREE:
            size, digest = _hash_stream(fd, _stream_hasher(algorithm))
            if fsync:
                os.fsync(fd)
            return size, digest
        size = os.fstat(fd).st_size
        parts = pieces(size)
        if len(parts) <= 1:
            buffer = memoryview(bytearray(READ))
            digest = tree_root([hash_piece(fd, offset, n, buffer) for offset, n in parts])
            if fsync:
                os.fsync(fd)
            return size, digest
        workers = PieceWorkers(fd, min(hash_threads(), len(parts)))
        try:
            for offset, length in parts:
                workers.add(offset, length)
            if fsync:
                os.fsync(fd)  # the disk works while the threads hash
            return size, workers.finish()
        finally:
            workers.stop()


def _hash_stream(fd: int, hasher: Hasher) -> tuple[int, str]:
    buffer = memoryview(bytearray(PIECE))
    size = 0
    while count := os.readv(fd, [buffer]):
        hasher.update(buffer[:count])
        size += count
    return size, hasher.hexdigest()
