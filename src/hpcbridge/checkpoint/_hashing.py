"""Content hashing: BLAKE3 when installed (several GB/s), else SHA-256 from the standard library.

Hashing runs in a helper thread so that it overlaps with reads or writes; both BLAKE3 and
hashlib release the GIL on large buffers, so the overlap is real parallelism.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

_blake3: Any
try:
    from blake3 import blake3 as _blake3
except ImportError:  # the SDK must work with the standard library alone
    _blake3 = None

CHUNK = 8 << 20
"""Read and hash in 8 MiB pieces: large enough to amortise calls, small enough for caches."""


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...

    def hexdigest(self) -> str: ...


def available_algorithms() -> tuple[str, ...]:
    return ("blake3", "sha256") if _blake3 is not None else ("sha256",)


def default_algorithm() -> str:
    return available_algorithms()[0]


def new_hasher(algorithm: str, *, parallel: bool = True) -> Hasher:
    """``parallel`` lets BLAKE3 spread one large update over all cores (it then also scales
    on big nodes); a writer that keeps one core busy with I/O asks for one thread."""
    if algorithm == "blake3" and _blake3 is not None:
        hasher: Hasher = _blake3(max_threads=_blake3.AUTO if parallel else 1)
        return hasher
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"hash algorithm {algorithm!r} is not available here")


def hash_file(path: Path, algorithm: str, *, fsync: bool = False) -> tuple[int, str]:
    """Return ``(size, hexdigest)`` of a file; with ``fsync`` also flush it, overlapped."""
    hasher = new_hasher(algorithm)
    size = 0
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        if os.fstat(fd).st_size <= CHUNK:
            while data := f.read(CHUNK):
                hasher.update(data)
                size += len(data)
            if fsync:
                os.fsync(fd)
            return size, hasher.hexdigest()
        # Double buffering: read piece i+1 while the worker hashes piece i (and another
        # worker flushes the file to disk).
        buffers = (bytearray(CHUNK), bytearray(CHUNK))
        with ThreadPoolExecutor(2, thread_name_prefix="ckpt-hash") as pool:
            flushed = pool.submit(os.fsync, fd) if fsync else None
            pending: Future[object] | None = None
            index = 0
            while True:
                buffer = buffers[index % 2]
                count = f.readinto(buffer)
                if pending is not None:
                    pending.result()
                if not count:
                    break
                size += count
                pending = pool.submit(hasher.update, memoryview(buffer)[:count])
                index += 1
            if flushed is not None:
                flushed.result()
    return size, hasher.hexdigest()
