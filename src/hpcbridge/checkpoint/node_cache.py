"""The job wrapper's node-local cache of staged inputs (node-local scratch).

Run on the node as ``python -m hpcbridge.checkpoint.node_cache MANIFEST STATUS_DIR --
ARGV...`` before ``verify_inputs``, with ``HPCBRIDGE_NODE_CACHE_DIR`` (``{node}`` becomes
this node's name) and ``HPCBRIDGE_NODE_CACHE_MAX_BYTES``. Each input of the manifest is
taken from the node cache when it holds the digest (re-hashed there, a local read; a damaged
copy is replaced), or copied there from the staged copy on shared storage and hashed before
it enters the cache; the job's path then becomes a link to
the cached object (a hard link, or a symbolic one across file systems), so ``verify_inputs``
re-hashes what the job will read. ``STATUS_DIR/node_cache.json`` says what the node holds
and how many bytes it copied; the control plane places later jobs by it.

Eviction is least recently used past the size limit and skips every object a job still
uses: one with another hard link (``st_nlink > 1``), or one a running job holds a shared
``flock`` on (taken here and kept open across ``exec`` into the job). A cache that cannot be
used costs speed, never correctness: the job then reads the shared copy. Standard library
only, like ``verify_inputs``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint._hashing import can_verify, hash_file

REPORT = "node_cache.json"
DIR_VARIABLE = "HPCBRIDGE_NODE_CACHE_DIR"
MAX_BYTES_VARIABLE = "HPCBRIDGE_NODE_CACHE_MAX_BYTES"
_LOCK = ".lock"


def node_name(environ: Mapping[str, str]) -> str:
    return environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def _digest_of(path: Path, algorithm: str) -> str | None:
    if can_verify(algorithm):
        return hash_file(path, algorithm)[1]
    if algorithm in hashlib.algorithms_available:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, algorithm).hexdigest()
    return None  # not computable here: the shared copy is used as it is


class NodeCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.in_use: list[int] = []
        """Descriptors holding a shared lock on each object this job uses."""

    def _object(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / algorithm / hexdigest

    def provide(self, path: Path, size: int, digest: str) -> int:
        """Make ``path`` a link to the cached copy of ``digest``; the bytes copied."""
        cached = self._object(digest)
        copied = 0
        if not self._intact(cached, size, digest):
            copied = self._copy_in(path, cached, digest)
            if copied < 0:
                return 0  # the shared copy does not match: verify_inputs reports it
        fd = os.open(cached, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.set_inheritable(fd, True)  # held by the job itself after exec
        self.in_use.append(fd)
        os.utime(cached)  # recently used
        self._link(cached, path)
        return copied

    @staticmethod
    def _intact(cached: Path, size: int, digest: str) -> bool:
        """Whether the node's copy still has ``digest``: re-hashed on every use (a local
        read), and a damaged copy removed, so that it never fails job after job."""
        if not cached.is_file():
            return False
        algorithm, _, expected = digest.partition(":")
        if cached.stat().st_size == size and _digest_of(cached, algorithm) == expected:
            return True
        cached.unlink()
        return False

    def _copy_in(self, source: Path, cached: Path, digest: str) -> int:
        algorithm, _, expected = digest.partition(":")
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        try:
            shutil.copyfile(source, tmp)
            if _digest_of(tmp, algorithm) != expected:
                return -1
            os.chmod(tmp, 0o444)  # shared by the node's jobs: nobody edits it in place
            os.replace(tmp, cached)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return cached.stat().st_size

    @staticmethod
    def _link(cached: Path, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.node-cache.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.link(cached, tmp)
        except OSError:
            os.symlink(cached, tmp)  # node-local scratch on another file system
        os.replace(tmp, path)

    def objects(self) -> list[tuple[Path, os.stat_result]]:
        found = []
        for directory in self.root.iterdir() if self.root.is_dir() else ():
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if not path.name.startswith("."):
                    with contextlib.suppress(FileNotFoundError):
                        found.append((path, path.stat()))
        return found

    def evict(self) -> list[Path]:
        """Remove least recently used objects no job uses, down to ``max_bytes``."""
        objects = self.objects()
        total = sum(st.st_size for _, st in objects)
        removed = []
        for path, st in sorted(objects, key=lambda item: item[1].st_mtime):
            if total <= self.max_bytes:
                break
            if st.st_nlink > 1 or _locked(path):
                continue  # an input of a job on this node
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= st.st_size
                removed.append(path)
        return removed

    def holds(self) -> dict[str, int]:
        return {f"{path.parent.name}:{path.name}": st.st_size for path, st in self.objects()}


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False


def run(manifest: Path, cache: NodeCache, node: str) -> dict[str, Any]:
    """Provide every input of ``manifest`` from ``cache``; the report to write."""
    files = json.loads(manifest.read_text())["files"]
    cache.root.mkdir(parents=True, exist_ok=True)
    copied = linked = 0
    with open(cache.root / _LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one job at a time fills and evicts
        for entry in files:
            size = int(entry["size"])
            moved = cache.provide(Path(entry["path"]), size, str(entry["digest"]))
            copied += moved
            linked += size - moved
        evicted = cache.evict()
        holds = cache.holds()
    return {
        "node": node,
        "dir": str(cache.root),
        "inputs": len(files),
        "bytes_copied": copied,
        "bytes_linked": linked,
        "evicted": len(evicted),
        "holds": holds,
        "at": time.time(),
    }


def _write(status_dir: str, report: dict[str, Any]) -> None:
    os.makedirs(status_dir, exist_ok=True)
    target = Path(status_dir, REPORT)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, target)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: node_cache MANIFEST STATUS_DIR -- ARGV...", file=sys.stderr)
        return 2
    manifest, status_dir, command = Path(argv[0]), argv[1], argv[3:]
    node = node_name(os.environ)
    template = os.environ.get(DIR_VARIABLE, "")
    if template:
        root = Path(template.replace("{node}", node))
        cache = NodeCache(root, int(os.environ.get(MAX_BYTES_VARIABLE) or 100 << 30))
        try:
            report = run(manifest, cache, node)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"hpcbridge: node cache {root} not used: {exc}", file=sys.stderr)
            report = {"node": node, "dir": str(root), "error": str(exc), "at": time.time()}
        if status_dir:
            with contextlib.suppress(OSError):
                _write(status_dir, report)
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
