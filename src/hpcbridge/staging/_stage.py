"""Stage a job's inputs in and its outputs out: parallel per file, verified, recorded.

Called from a worker thread, never inside a store transaction. A stage is idempotent: run
again after a crash it keeps files a previous run recorded and that still match their
digests, resumes ``.part`` files and copies the rest.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hpcbridge.checkpoint.verify_inputs import boot_id
from hpcbridge.spec import JobSpec
from hpcbridge.staging._cache import Cache
from hpcbridge.staging._digest import default_algorithm
from hpcbridge.staging._manifest import (
    INPUTS,
    OUTPUTS,
    FileRecord,
    manifest_dir,
    read_manifest,
    write_manifest,
)
from hpcbridge.staging._plan import plan_in, plan_out
from hpcbridge.staging._sync import sync_filesystems
from hpcbridge.staging._transfer import (
    DEFER_BELOW,
    Durability,
    FileTask,
    Meter,
    Progress,
    Retry,
    still_valid,
    transfer,
)

MAX_PARALLEL = 8
"""Transfers at once where a side is remote: latency, not CPU, sets their pace."""
MAX_PARALLEL_LOCAL = 2
"""Destination directories filled at once between local paths, each by one thread. Two
threads filling the same directory queue on its lock (on ext4, 10,000 files of 4 KiB took
twice as long as with one thread; eight threads, four times); two filling different ones
took half as long where file creation is slow (ext4 after many removals), a quarter
longer where it is fast and the interpreter's own work sets the pace."""
DEFAULT_RETRY = Retry()


@dataclass(frozen=True, slots=True)
class StageReport:
    files: tuple[FileRecord, ...]
    bytes_total: int
    bytes_copied: int
    duration_s: float
    manifest: Path
    endpoints: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    """Per storage endpoint (``Location.endpoint``): bytes copied and seconds spent copying
    them (transfers run in parallel, so the seconds can add up to more than the stage)."""

    @property
    def throughput_bps(self) -> float:
        return self.bytes_copied / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "files": len(self.files),
            "bytes_total": self.bytes_total,
            "bytes_copied": self.bytes_copied,
            "duration_s": round(self.duration_s, 3),
            "manifest": str(self.manifest),
            "endpoints": {
                name: {"bytes": copied, "seconds": round(seconds, 6)}
                for name, (copied, seconds) in sorted(self.endpoints.items())
            },
        }


def stage_in(
    spec: JobSpec,
    data_dir: Path,
    *,
    retry: Retry = DEFAULT_RETRY,
    progress: Progress | None = None,
    cache: Cache | None = None,
    durable: bool = True,
) -> StageReport:
    """Inputs into ``data_dir``; with a ``cache``, inputs it holds are linked, not copied.

    ``durable=False`` where the copies need not outlive this machine: a job that runs here
    ends with it, and its retry stages again, re-hashing what it keeps (so does the cache
    before it links an object, and the job wrapper before the command runs), so a copy
    that a crash tore is found and copied again. Elsewhere (a job on another node, which
    may start after this machine crashed) the copies are on disk before the manifest."""
    tasks = plan_in(spec.stage_in, data_dir)
    earlier = {r.path: r for r in read_manifest(manifest_dir(data_dir) / INPUTS)}
    manifest = manifest_dir(data_dir) / INPUTS
    # Left to writeback only where the node's check can tell a crash's torn copy (by boot).
    mode: Durability = "none" if not durable and boot_id() is not None else "batch"
    return _run(tasks, earlier, manifest, "inputs", retry, progress, cache, mode)


def stage_out(
    spec: JobSpec,
    data_dir: Path,
    *,
    succeeded: bool,
    retry: Retry = DEFAULT_RETRY,
    progress: Progress | None = None,
) -> StageReport:
    tasks = plan_out(spec.stage_out, data_dir, succeeded=succeeded)
    return _run(
        tasks, {}, manifest_dir(data_dir) / OUTPUTS, "outputs", retry, progress, None, "batch"
    )


def _by_directory(
    one: Callable[[FileTask], tuple[FileRecord, int]], tasks: Sequence[FileTask]
) -> list[tuple[FileRecord, int]]:
    """``one`` of every task, in order; a directory's files by one thread, in turn."""
    groups: dict[str, list[int]] = {}
    for index, task in enumerate(tasks):
        groups.setdefault(posixpath.dirname(task.dest.path), []).append(index)
    if len(groups) < 2:
        return [one(task) for task in tasks]
    done: list[tuple[FileRecord, int] | None] = [None] * len(tasks)

    def fill(indices: list[int]) -> None:
        for index in indices:
            done[index] = one(tasks[index])

    with ThreadPoolExecutor(MAX_PARALLEL_LOCAL, "hb-stage") as pool:
        for _ in pool.map(fill, groups.values()):  # the first error is raised here
            pass
    results = [result for result in done if result is not None]
    assert len(results) == len(tasks)  # every task ran, or its error was raised above
    return results


def _run(
    tasks: Sequence[FileTask],
    earlier: dict[str, FileRecord],
    manifest: Path,
    kind: str,
    retry: Retry,
    progress: Progress | None,
    cache: Cache | None,
    durable: Durability,
) -> StageReport:
    started = time.monotonic()
    algorithm = default_algorithm()
    if isinstance(progress, Meter):
        progress.total = sum(t.size or 0 for t in tasks)

    def one(task: FileTask) -> tuple[FileRecord, int]:
        kept = earlier.get(task.dest.path)
        if (
            kept is not None
            and kept.source == task.source.url
            and kept.size == task.size
            and (task.expected is None or kept.digest == task.expected.lower())
            and still_valid(kept)
        ):
            if progress is not None:
                progress(kept.size)
            return kept, 0
        cached = cache.fetch(task) if cache is not None else None
        if cached is not None:
            if progress is not None:
                progress(cached.size)
            return cached, 0
        began = time.monotonic()
        record, copied = transfer(task, algorithm, retry, progress, durable=durable)
        remote = task.source if kind == "inputs" else task.dest
        with lock:
            if durable == "batch" and task.dest.local and record.size < DEFER_BELOW:
                unsynced.add(Path(record.path).parent)
            was_copied, was_s = endpoints.get(remote.endpoint, (0, 0.0))
            endpoints[remote.endpoint] = (was_copied + copied, was_s + time.monotonic() - began)
        if cache is not None:
            cache.keep(task, record, evict=False)
        return record, copied

    endpoints: dict[str, tuple[int, float]] = {}
    unsynced: set[Path] = set()  # directories of files copied without their own fsync
    lock = threading.Lock()
    if all(task.source.local and task.dest.local for task in tasks):
        done = _by_directory(one, tasks)
    else:
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(tasks)) or 1, "hb-stage") as pool:
            done = list(pool.map(one, tasks))  # the first error is raised here
    files = tuple(record for record, _ in done)
    sync_filesystems(unsynced)  # every copy is on disk before the manifest names it
    write_manifest(manifest, kind, files, unsynced_boot=boot_id() if durable == "none" else None)
    if cache is not None:
        cache.evict()
    return StageReport(
        files=files,
        bytes_total=sum(f.size for f in files),
        bytes_copied=sum(copied for _, copied in done),
        duration_s=time.monotonic() - started,
        manifest=manifest,
        endpoints=endpoints,
    )
