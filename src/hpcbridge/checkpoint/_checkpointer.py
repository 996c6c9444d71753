"""The checkpointer: atomic saves, keep-last-K, verified restores, interval and preemption.

A save is written into a hidden temporary directory, every file and directory in it is
fsynced, the manifest is written and fsynced last, and only then is the directory renamed
to ``step-<n>`` and the parent fsynced. A crash at any point leaves either the previous
checkpoints alone or the new one complete: there is no state in which a reader sees a
``step-<n>`` directory that was not fully written.

One process writes a checkpoint directory (rank 0, say); any number may read it.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from ._env import CheckpointConfig, Interval
from ._errors import CheckpointConfigError, CheckpointError, CorruptCheckpointError
from ._events import EventLog, log
from ._fsutil import fsync_path, remove_tree, write_durable
from ._hashing import TREE, cannot_verify_reason, hash_file
from ._interval import IntervalPolicy
from ._manifest import MANIFEST_NAME, FileEntry, Manifest, check_relative, finite_json
from ._preempt import PreemptionFlag, exit_for_requeue
from ._store import (
    TEMP_PREFIX,
    TRASH_PREFIX,
    Checkpoint,
    Skipped,
    Verify,
    committed,
    host_tag,
    step_name,
    temp_owner,
    walk_files,
)
from ._store import verify as verify_checkpoint
from ._writer import FileWriter, Written


class SaveSession:
    """One save in progress; use as ``with ckpt.save(step) as d:``.

    ``d`` is path-like (``d / "model.pt"``, ``open(d / "x", "wb")``) for libraries that
    write to paths; :meth:`open` returns a writer that hashes while it writes, where files
    written by path are hashed in a pass of their own at commit. Leaving the block normally
    commits; leaving it with an exception discards the temporary directory.
    """

    def __init__(
        self,
        owner: Checkpointer,
        step: int,
        metadata: Mapping[str, Any] | None,
        track_interval: bool,
        event_fields: Mapping[str, Any] | None,
    ) -> None:
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step={step!r} must be a non-negative integer")
        self.step = step
        self.metadata = dict(metadata or {})
        finite_json(self.metadata)
        self.checkpoint: Checkpoint | None = None
        """The committed checkpoint, once the ``with`` block has exited normally."""
        self._owner = owner
        self._track_interval = track_interval
        self._event_fields = dict(event_fields or {})
        self._writers: list[FileWriter] = []
        self._started = 0.0
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        """The temporary directory the files go into (only inside the ``with`` block)."""
        if self._path is None:
            raise RuntimeError("use the save inside `with ckpt.save(step) as d:`")
        return self._path

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def open(self, name: str) -> FileWriter:
        """A new file ``name`` (``a/b.bin`` creates ``a/``) that is hashed as it is written."""
        target = self.path / check_relative(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        writer = FileWriter(target)
        self._writers.append(writer)
        return writer

    def write_bytes(self, name: str, data: bytes | bytearray | memoryview) -> None:
        with self.open(name) as writer:
            writer.write(data)

    def write_json(self, name: str, obj: object) -> None:
        self.write_bytes(name, finite_json(obj))

    def __enter__(self) -> SaveSession:
        if self._path is not None:
            raise RuntimeError("a SaveSession can be entered only once")
        self._started = time.perf_counter()
        self._path = self._owner._new_temp_dir(self.step)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._close_writers()
            if exc_type is None:
                self.checkpoint = self._owner._commit(self)
        except BaseException as failure:
            self._abort(failure)
            raise
        else:
            if exc_type is not None and exc is not None:
                self._abort(exc)

    def _close_writers(self) -> None:
        """Close every writer (stopping its hashing threads), then raise the first error."""
        first: BaseException | None = None
        for writer in self._writers:
            try:
                writer.close()
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first

    def _abort(self, reason: BaseException) -> None:
        remove_tree(self.path)
        self._owner.events.emit(
            "checkpoint_save_failed", step=self.step, reason=f"{type(reason).__name__}: {reason}"
        )

    def _manifest_entries(self) -> list[FileEntry]:
        """Hash and fsync every file; reuse what writers hashed if the file is unchanged."""
        known: dict[Path, Written] = {
            w.path: w.result for w in self._writers if w.result is not None
        }
        to_hash: list[tuple[str, Path]] = []
        entries: dict[str, FileEntry] = {}
        for rel, path in walk_files(self.path):
            if rel == MANIFEST_NAME:
                raise CheckpointError(f"{MANIFEST_NAME} is reserved for the SDK")
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                raise CheckpointError(f"{rel} is not a regular file (symlinks are refused)")
            written = known.get(path)
            if (
                written is not None
                and written.size == info.st_size
                and written.mtime_ns == info.st_mtime_ns
            ):
                entries[rel] = FileEntry(rel, written.size, written.digest)
            else:
                to_hash.append((rel, path))
        if to_hash:
            # Files in parallel, and each large file's pieces in parallel too (hash_file).
            with ThreadPoolExecutor(min(4, len(to_hash))) as pool:
                hashed = pool.map(lambda item: hash_file(item[1], TREE, fsync=True), to_hash)
                for (rel, _), (size, digest) in zip(to_hash, hashed, strict=True):
                    entries[rel] = FileEntry(rel, size, digest)
        return [entries[rel] for rel in sorted(entries)]


class Checkpointer:
    """Saves and restores checkpoints of one job; reads ``HPCBRIDGE_*`` for its defaults.

    Arguments override the environment (see :class:`CheckpointConfig`). With
    ``handle_preemption=True`` the configured signal sets :attr:`preempted` (main thread
    only). ``clock`` is the time source of :meth:`should_save`. Checkpoints are always
    hashed with ``sha256-tree-8MiB`` (``algorithm`` accepts only that name), so that any
    machine can verify them with the standard library.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        job_id: str | None = None,
        attempt: int | None = None,
        keep: int | None = None,
        interval: Interval | None = None,
        mtbf_s: float | None = None,
        signal: str | int | None = None,
        status_dir: str | os.PathLike[str] | None = None,
        requeue_exit_code: int | None = None,
        handle_preemption: bool = False,
        algorithm: str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = CheckpointConfig.from_env(
            environ,
            directory=directory,
            job_id=job_id,
            attempt=attempt,
            keep=keep,
            interval=interval,
            mtbf_s=mtbf_s,
            signal=signal,
            status_dir=status_dir,
            requeue_exit_code=requeue_exit_code,
        )
        # Absolute, so that paths in events mean the same to the control plane.
        self.directory = self.config.directory.absolute()
        if algorithm not in (None, TREE):
            raise CheckpointConfigError(
                f"algorithm={algorithm!r}: checkpoints are written with {TREE!r} only, which "
                "every machine can verify with the standard library; leave algorithm unset"
            )
        self.algorithm = TREE
        self.events = EventLog(
            self.config.status_dir, job_id=self.config.job_id, attempt=self.config.attempt
        )
        self.clock = clock
        self.interval = IntervalPolicy(self.config.interval, self.config.mtbf_s, start=clock())
        self.preemption = PreemptionFlag()
        if handle_preemption:
            self.install_preemption_handler()
        self.last_saved: Checkpoint | None = None
        self.last_skipped: tuple[Skipped, ...] = ()
        # Called before exit_for_requeue leaves: extensions finish saves still in flight.
        self._before_exit: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self._own_temps: set[str] = set()
        self._host = host_tag()

    # -- preemption and requeue ------------------------------------------------------------

    def install_preemption_handler(self) -> PreemptionFlag:
        """Watch the configured signal (``HPCBRIDGE_CHECKPOINT_SIGNAL``, default SIGTERM)."""
        return self.preemption.install(self.config.signal)

    @property
    def preempted(self) -> bool:
        """True once the preemption signal has arrived: save now and exit for a requeue."""
        return self.preemption.is_set

    def exit_for_requeue(self) -> NoReturn:
        """Finish saves in flight, record the request, exit with the requeue code (75)."""
        for finish in self._before_exit:
            finish()
        self.events.emit(
            "requeue_requested",
            exit_code=self.config.requeue_exit_code,
            signal=self.preemption.signum,
            step=None if self.last_saved is None else self.last_saved.step,
        )
        exit_for_requeue(self.config.requeue_exit_code)

    # -- interval ------------------------------------------------------------------------

    def should_save(self, now: float | None = None) -> bool:
        """True when the checkpoint interval has elapsed or a preemption was announced."""
        if self.preempted:
            return True
        return self.interval.should_save(self.clock() if now is None else now)

    # -- saving --------------------------------------------------------------------------

    def save(
        self,
        step: int,
        *,
        metadata: Mapping[str, Any] | None = None,
        track_interval: bool = True,
        event_fields: Mapping[str, Any] | None = None,
    ) -> SaveSession:
        """Start an atomic save of ``step``; see :class:`SaveSession`.

        ``metadata`` (strict JSON) goes into the manifest. ``track_interval=False`` leaves
        the interval clock alone, for callers (async saves) that account the cost themselves.
        """
        return SaveSession(self, step, metadata, track_interval, event_fields)

    def save_bytes(
        self,
        step: int,
        files: Mapping[str, bytes | bytearray | memoryview],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> Checkpoint:
        """Save ``{relative name: content}`` as one checkpoint."""
        with self.save(step, metadata=metadata) as session:
            for name, data in files.items():
                session.write_bytes(name, data)
        assert session.checkpoint is not None
        return session.checkpoint

    def save_json(
        self,
        step: int,
        state: object,
        *,
        name: str = "state.json",
        metadata: Mapping[str, Any] | None = None,
    ) -> Checkpoint:
        """Save one strict-JSON document (NaN and infinity are refused)."""
        return self.save_bytes(step, {name: finite_json(state)}, metadata=metadata)

    def _new_temp_dir(self, step: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = "-".join(
            (
                TEMP_PREFIX + step_name(step),
                f"a{self.config.attempt or 0}",
                self._host,
                str(os.getpid()),
                secrets.token_hex(4),
            )
        )
        path = self.directory / name
        path.mkdir()
        with self._lock:
            self._own_temps.add(name)
        return path

    def _commit(self, session: SaveSession) -> Checkpoint:
        temp = session.path
        entries = session._manifest_entries()
        for dirpath, _, _ in os.walk(temp, topdown=False):
            if dirpath != os.fspath(temp):  # the root is fsynced once, after the manifest
                fsync_path(Path(dirpath))
        manifest = Manifest(
            step=session.step,
            created=time.time(),
            algorithm=self.algorithm,
            files=tuple(entries),
            job_id=self.config.job_id,
            attempt=self.config.attempt,
            metadata=session.metadata,
        )
        write_durable(temp / MANIFEST_NAME, manifest.to_json())
        fsync_path(temp)

        same_step = [e.generation for e in committed(self.directory) if e.step == session.step]
        final = self.directory / step_name(session.step, max(same_step, default=-1) + 1)
        os.rename(temp, final)
        fsync_path(self.directory)
        with self._lock:
            self._own_temps.discard(temp.name)

        duration = time.perf_counter() - session._started
        checkpoint = Checkpoint(final, manifest, verified="full")
        with self._lock:
            self.last_saved = checkpoint
            if session._track_interval:
                self.interval.record_save(duration, end=self.clock())
        self.events.emit(
            "checkpoint_saved",
            step=session.step,
            duration_s=duration,
            bytes=manifest.total_bytes,
            files=len(entries),
            path=str(final),
            **session._event_fields,
        )
        self._prune(final)
        return checkpoint

    def _prune(self, saved: Path) -> None:
        """Keep the newest K checkpoints; drop any newer than the one just saved.

        Checkpoints past the saved step belong to an abandoned timeline (the job resumed
        from an older one, e.g. because they were corrupt) and would otherwise be picked by
        the next restore; older generations of the saved step are superseded. Deletion
        renames first, so a crash never leaves a half-deleted ``step-<n>`` for a reader.
        Housekeeping failures are logged, not raised: the new checkpoint is already safe.
        """
        entries = committed(self.directory)
        current = next(e for e in entries if e.path == saved)
        older_steps = sorted({e.step for e in entries if e.step < current.step})
        kept = set(older_steps[max(0, len(older_steps) - (self.config.keep - 1)) :])
        doomed = [
            e
            for e in entries
            if e.step > current.step
            or (e.step == current.step and e.path != saved)
            or (e.step < current.step and e.step not in kept)
        ]
        for entry in doomed:
            try:
                remove_tree(self._move_aside(entry.path))
            except OSError as exc:
                log.warning("cannot prune checkpoint %s: %s", entry.path, exc)
                continue
            self.events.emit("checkpoint_pruned", step=entry.step, path=str(entry.path))
        try:
            self._remove_stale_leftovers()
        except OSError as exc:
            log.warning("cannot clean up %s: %s", self.directory, exc)

    def _move_aside(self, path: Path) -> Path:
        """Rename to a hidden name first, so that readers never see a half-deleted tree."""
        trash = self.directory / f"{TRASH_PREFIX}{path.name}-{secrets.token_hex(4)}"
        os.rename(path, trash)
        return trash

    def _remove_stale_leftovers(self) -> None:
        """Delete trash and temporary directories whose writer is certainly gone."""
        attempt = self.config.attempt
        for entry in os.scandir(self.directory):
            name = entry.name
            if name.startswith(TRASH_PREFIX):
                remove_tree(Path(entry.path))
                continue
            owner = temp_owner(name)
            if owner is None:
                continue
            with self._lock:
                if name in self._own_temps:
                    continue
            their_attempt, host, pid = owner
            earlier_attempt = (
                attempt is not None and their_attempt is not None and their_attempt < attempt
            )
            dead_here = host == self._host and (pid == os.getpid() or not _alive(pid))
            if earlier_attempt or dead_here:
                remove_tree(Path(entry.path))

    # -- reading -------------------------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Committed checkpoints as ``(step, path)``, oldest first, not verified."""
        return [(entry.step, entry.path) for entry in committed(self.directory)]

    def latest_valid(self, *, verify: Verify = "full") -> Checkpoint | None:
        """The newest checkpoint that verifies, or None; skips (and reports) damaged ones.

        ``verify="full"`` checks every byte against its checksum; ``"size"`` only the
        manifest and file sizes (fast, catches truncation but not bit flips). A checkpoint
        whose digests cannot be computed here (BLAKE3 of manifest version 1 without the
        ``blake3`` package) is size-checked and used, with a warning and a
        ``checkpoint_unverified`` event: its :attr:`~Checkpoint.verified` says ``"size"``.
        """
        skipped: list[Skipped] = []
        found: Checkpoint | None = None
        for entry in reversed(committed(self.directory)):
            step, path = entry.step, entry.path
            try:
                manifest, verified = verify_checkpoint(path, verify)
            except CorruptCheckpointError as exc:
                skipped.append(Skipped(path, step, str(exc)))
                self.events.emit(
                    "checkpoint_skipped_corrupt", step=step, path=str(path), reason=str(exc)
                )
                continue
            except OSError as exc:
                reason = f"unreadable: {exc}"
                skipped.append(Skipped(path, step, reason))
                self.events.emit(
                    "checkpoint_skipped_corrupt", step=step, path=str(path), reason=reason
                )
                continue
            if verified != verify:
                # Never discard a checkpoint only because this machine lacks its hash.
                reason = cannot_verify_reason(manifest.algorithm)
                log.warning("using checkpoint %s without verifying it: %s", path, reason)
                self.events.emit("checkpoint_unverified", step=step, path=str(path), reason=reason)
            found = Checkpoint(path, manifest, verified=verified, skipped=tuple(skipped))
            break
        self.last_skipped = tuple(skipped)
        return found

    def restore(self, *, verify: Verify = "full") -> Checkpoint | None:
        """:meth:`latest_valid`, plus a ``checkpoint_restored`` event; None on a fresh start."""
        started = time.perf_counter()
        found = self.latest_valid(verify=verify)
        if found is not None:
            self.events.emit(
                "checkpoint_restored",
                step=found.step,
                path=str(found.path),
                bytes=found.manifest.total_bytes,
                verify=found.verified,
                duration_s=time.perf_counter() - started,
                skipped=len(found.skipped),
            )
        return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True
