"""A content-addressed cache of staged inputs, shared by the jobs of one installation.

Objects live at ``<root>/<algorithm>/<digest>``, read-only, and reach a job's data
directory as hard links: a second job with the same input copies nothing. An input is found
by its expected checksum, or by its source URL when the source still reports the same size
and version (mtime or ETag) as when it was cached. Eviction is least recently used, past
``max_bytes``, and skips every object a data directory still links (``st_nlink > 1``): an
input of a running job is never evicted. The job wrapper re-hashes what it is given, so a
cache object damaged on disk fails the job loudly instead of feeding it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from hpcbridge.staging._digest import split
from hpcbridge.staging._manifest import FileRecord
from hpcbridge.staging._transfer import FileTask, still_valid

DEFAULT_MAX_BYTES = 100 << 30


class Cache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _object(self, digest: str) -> Path:
        algorithm, hexdigest = split(digest)
        return self.root / algorithm / hexdigest

    def _index(self, url: str) -> Path:
        return self.root / "index" / hashlib.sha256(url.encode()).hexdigest()

    def _known_digest(self, task: FileTask) -> str | None:
        if task.expected is not None:
            algorithm, hexdigest = split(task.expected)
            return f"{algorithm}:{hexdigest}"
        if task.identity is None:
            return None
        try:
            entry = json.loads(self._index(task.source.url).read_text())
        except (OSError, ValueError):
            return None
        same = entry.get("identity") == task.identity and entry.get("size") == task.size
        return str(entry["digest"]) if same and entry.get("url") == task.source.url else None

    def fetch(self, task: FileTask) -> FileRecord | None:
        """Link a cached copy of ``task``'s source into its destination; None on a miss."""
        digest = self._known_digest(task)
        if digest is None or not task.dest.local:
            return None
        cached = self._object(digest)
        try:
            size = cached.stat().st_size
            if task.size is not None and size != task.size:
                return None
            if not still_valid(FileRecord(str(cached), task.source.url, size, digest)):
                cached.unlink()  # damaged on disk: fetch the source again
                return None
            dest = Path(task.dest.path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
            os.link(cached, dest)
            os.utime(cached)  # recently used
        except OSError:
            return None  # another file system, or evicted meanwhile: copy instead
        return FileRecord(task.dest.path, task.source.url, size, digest)

    def keep(self, task: FileTask, record: FileRecord, *, evict: bool = True) -> None:
        """Add a freshly staged file to the cache (a link, no copy), then evict (a stage of
        many files passes ``evict=False`` and evicts once at its end: eviction lists the
        whole cache)."""
        if not task.dest.local:
            return
        cached = self._object(record.digest)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            if not cached.exists():
                os.chmod(record.path, 0o444)  # shared by jobs: nobody edits it in place
                tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
                os.link(record.path, tmp)
                os.replace(tmp, cached)
            if task.identity is not None:
                self._remember(task, record)
        except OSError:
            return  # a cache that cannot be written costs speed, never correctness
        if evict:
            self.evict()

    def _remember(self, task: FileTask, record: FileRecord) -> None:
        index = self._index(task.source.url)
        index.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "url": task.source.url,
            "identity": task.identity,
            "size": record.size,
            "digest": record.digest,
        }
        tmp = index.with_name(index.name + ".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, index)

    def evict(self) -> list[Path]:
        """Remove least recently used objects no data directory links, down to max_bytes."""
        objects = []
        for directory in self.root.iterdir() if self.root.is_dir() else ():
            if directory.name == "index" or not directory.is_dir():
                continue
            for path in directory.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    objects.append((path, path.stat()))
        total = sum(st.st_size for _, st in objects)
        removed = []
        for path, st in sorted(objects, key=lambda item: item[1].st_mtime):
            if total <= self.max_bytes:
                break
            if st.st_nlink > 1 or path.name.startswith("."):
                continue  # a job's input, or an insert in progress
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= st.st_size
                removed.append(path)
        return removed
