"""Durability helpers: a rename is only crash-safe once data and directories are fsynced."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file or directory to stable storage (Linux allows fsync on O_RDONLY fds)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` and fsync it; the caller fsyncs the directory."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Delete a directory tree, ignoring one that is already gone."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)


def drop_cache(path: Path) -> None:
    """Ask the kernel to forget a file's cached pages (for cold-read measurements)."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
