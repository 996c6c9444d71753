"""A large local file copied by the kernel (``copy_file_range``), hashed as it lands.

The kernel moves the data once, page cache to page cache, where a read and a write
through a buffer copy it twice (and a 2 GiB file took twice as long as ``cp``, which does
the same). Each block is then read back from the destination, from the page cache, and
hashed while the next block is copied: what is hashed is what was written, so the digest
still vouches for the copy end to end.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from hpcbridge.checkpoint._hashing import Hasher
from hpcbridge.staging._errors import StagingError

# What copy_file_range answers where it cannot copy between these two files (another file
# system on older kernels, a file system without it, a special file): nothing was copied.
_UNSUPPORTED = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


def copy_in_kernel(
    src: int,
    part: str,
    read_back: int,
    offset: int,
    hasher: Hasher,
    block: int,
    after_block: Callable[[int, int], None],
) -> int | None:
    """Copy ``src`` from ``offset`` to its end into the file ``part`` at the same offset,
    hashing what lands (read back through ``read_back``); ``after_block(position, length)``
    follows each block. The bytes copied, or None where the kernel cannot copy between
    these files (nothing written: copy another way)."""
    if not hasattr(os, "copy_file_range"):  # pragma: no cover - Linux has it since 3.8
        return None
    out = os.open(part, os.O_WRONLY | os.O_CLOEXEC)  # the caller's descriptor appends
    try:
        try:
            got = _copy_block(src, out, offset, block)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                return None
            raise
        buffer = memoryview(bytearray(block))
        position = offset
        with ThreadPoolExecutor(1, "hb-stage-copy") as copying:
            following: Future[int] | None = None
            try:
                while got:
                    following = copying.submit(_copy_block, src, out, position + got, block)
                    _hash_back(read_back, position, got, hasher, buffer)
                    after_block(position, got)
                    position += got
                    got = following.result()
            finally:
                if following is not None:
                    following.cancel()
        return position - offset
    finally:
        os.close(out)


def _copy_block(src: int, out: int, position: int, length: int) -> int:
    return os.copy_file_range(src, out, length, position, position)


def _hash_back(fd: int, position: int, length: int, hasher: Hasher, buffer: memoryview) -> None:
    while length:
        got = os.preadv(fd, [buffer[: min(length, len(buffer))]], position)
        if not got:
            raise StagingError("the destination became shorter while it was written")
        hasher.update(buffer[:got])
        position += got
        length -= got
