"""Digests computed while bytes stream past: BLAKE3 where installed, else SHA-256.

The algorithm is always recorded with the digest (``blake3:<hex>``), so a manifest written
on a machine with blake3 is verified elsewhere with the same algorithm, never skipped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hpcbridge.checkpoint._hashing import Hasher, can_verify, hash_file
from hpcbridge.staging._errors import StagingError

ALGORITHMS = ("blake3", "sha256", "md5")


def default_algorithm() -> str:
    return "blake3" if can_verify("blake3") else "sha256"


def new_hasher(algorithm: str) -> Hasher:
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    if algorithm in ("sha256", "blake3") and can_verify(algorithm):
        if algorithm == "sha256":
            return hashlib.sha256()
        from blake3 import blake3  # noqa: PLC0415 (optional extra)

        hasher: Hasher = blake3()
        return hasher
    raise StagingError(
        f"checksum algorithm {algorithm!r} is not available here",
        hint="install the 'fast' extra (blake3) or use a sha256: checksum",
    )


def split(checksum: str) -> tuple[str, str]:
    """``("sha256", "<hex>")`` of ``"sha256:<hex>"``; digests compare in lower case."""
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ALGORITHMS or not digest:
        raise StagingError(
            f"checksum {checksum!r} is not '<algorithm>:<hex>'",
            hint=f"use one of {', '.join(ALGORITHMS)}, e.g. sha256:9f86d0...",
        )
    return algorithm, digest.lower()


def digest_file(path: Path, algorithm: str) -> tuple[int, str]:
    """``(size, hex digest)`` of a local file, read in large blocks."""
    if algorithm == "md5":
        hasher = new_hasher("md5")
        size = 0
        with open(path, "rb", buffering=0) as f:
            while block := f.read(8 << 20):
                hasher.update(block)
                size += len(block)
        return size, hasher.hexdigest()
    new_hasher(algorithm)  # a clear error where the algorithm is missing
    return hash_file(path, algorithm)
