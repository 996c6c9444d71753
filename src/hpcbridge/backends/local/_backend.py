"""The local executor: the embedded default that runs jobs on this machine."""

from __future__ import annotations

import heapq
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from hpcbridge.backends import gpu_sampler
from hpcbridge.backends._protocol import (
    AttemptRef,
    LaunchRequest,
    NodeInfo,
    Observation,
    Phase,
    Submitted,
    WakeUp,
)
from hpcbridge.backends.local import _process as proc
from hpcbridge.backends.local._capacity import Capacity, Request, free_gpu_ids
from hpcbridge.backends.local._reaper import Reaper
from hpcbridge.config import Settings
from hpcbridge.containers import wrap_argv
from hpcbridge.errors import NotFoundError
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass

_UNSUPPORTED_HINT = "or set backend: slurm"
VERIFY_MODULE = "hpcbridge.checkpoint.verify_inputs"
GPU_SAMPLE_INTERVAL_S = 5.0


def _start_gpu_sampler(
    status_dir: Path, env: dict[str, str], job_pid: int
) -> subprocess.Popen[bytes] | None:
    """Utilisation samples of a GPU job's devices (M6) while it runs; it also stops by
    itself when the job, or this process, is gone."""
    argv = [
        sys.executable,
        gpu_sampler.__file__,
        str(status_dir),
        f"{GPU_SAMPLE_INTERVAL_S:g}",
        str(job_pid),
    ]
    try:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None  # no samples is better than no job


@dataclass(frozen=True, slots=True)
class _Start:
    token: str
    launch: dict[str, Any]
    gpu_ids: list[int]


@dataclass(order=True)
class _Queued:
    """An attempt waiting for a slot; ordered by priority, then arrival."""

    order: tuple[int, float, str]
    token: str = field(compare=False)
    launch: dict[str, Any] = field(compare=False)
    request: Request = field(compare=False)


class LocalBackend:
    """A small scheduler for this machine: queues attempts and starts them as slots free up.

    Each attempt runs as a process group under ``<home>/runs/<job>/attempt-<n>``. What is
    needed to start an attempt is kept in the store (the attempt's details), so after a
    restart queued attempts are queued again and running ones are found by their pid file.
    """

    name = "local"

    def __init__(self, settings: Settings, wake: WakeUp | None = None) -> None:
        self._runs = settings.runs_dir
        self._capacity = Capacity.detect(
            settings.local_cpus, settings.local_mem_mb, settings.local_gpus
        )
        self._grace_s = settings.kill_grace_s
        self._wake = wake or (lambda: None)
        self._host = socket.gethostname()
        self._queue: list[_Queued] = []
        self._queued: dict[str, _Queued] = {}
        self._in_use: dict[str, dict[str, Any]] = {}  # token -> resources of a live attempt
        self._launched: dict[str, float] = {}  # token -> when this instance started it
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._reaper = Reaper()
        self._lock = threading.Lock()
        self._drain_file = self._runs / ".drained"

    @property
    def capacity(self) -> Capacity:
        return self._capacity

    def check(self, spec: JobSpec) -> list[str]:
        problems = list(_unsupported_fields(spec))
        problems += self._capacity.too_big(Request.of(spec.resources))
        in_host = spec.container is None  # else the command is the image's
        if in_host and spec.command is not None and shutil.which(spec.command[0]) is None:
            problems.append(
                f"command[0]: {spec.command[0]!r} is not an executable on PATH; "
                "give the full path or install it"
            )
        return problems

    def status_dir(self, job_id: str, attempt: int) -> Path:
        return self._runs / job_id / f"attempt-{attempt}"

    def submit(self, request: LaunchRequest) -> Submitted:
        spec = request.spec
        status_dir = self.status_dir(request.job_id, request.attempt)
        argv = list(spec.command) if spec.command else _write_script(status_dir, spec)
        env = {**spec.env, **request.env, "HPCBRIDGE_STATUS_DIR": str(status_dir)}
        argv = wrap_argv(spec, sys.executable, status_dir, argv)  # in its container, if any
        manifest = request.env.get("HPCBRIDGE_INPUT_MANIFEST")
        if manifest:  # staged inputs are checked again right before the command runs
            argv = [sys.executable, "-m", VERIFY_MODULE, manifest, str(status_dir), "--", *argv]
        grace_s = self._grace_s
        if spec.checkpoint is not None:
            # Here the warning before a stop (walltime, cancel) is SIGTERM, then the grace.
            env["HPCBRIDGE_CHECKPOINT_SIGNAL"] = "SIGTERM"
            grace_s = max(grace_s, spec.checkpoint.grace_s)
        launch: dict[str, Any] = {
            "dir": str(status_dir),
            "host": self._host,
            "argv": argv,
            "env": env,
            "grace_s": grace_s,
            "priority": spec.priority,
            "queued_at": time.time(),
            "cwd": request.env.get("HPCBRIDGE_DATA_DIR") or str(status_dir / "work"),
            **Request.of(spec.resources).as_details(),
        }
        with self._lock:
            self._enqueue(request.token, launch)
            starts = self._start_ready()
        self._start(starts)
        running = request.token in self._launched
        return Submitted(native_id=request.token, details=launch, running=running)

    def _enqueue(self, token: str, launch: dict[str, Any]) -> None:
        if token in self._queued or token in self._in_use:
            return
        entry = _Queued(
            (-int(launch.get("priority", 0)), launch["queued_at"], token),
            token,
            launch,
            Request(launch["cpus"], launch["mem_mb"], launch["gpus"]),
        )
        heapq.heappush(self._queue, entry)
        self._queued[token] = entry

    def _start_ready(self) -> list[_Start]:
        """Reserve slots for queued attempts in order while they fit (call under the lock).

        Strict order, so a big job is never starved by small ones. The caller starts the
        returned attempts with ``_start`` after releasing the lock: forking is slow.
        """
        if self._drain_file.exists():
            return []  # quarantined: nothing new starts until an operator resumes the node
        starts: list[_Start] = []
        while self._queue:
            head = self._queue[0]
            wanted = head.request
            if self._capacity.shortfall(wanted, self._in_use.values()) is not None:
                break
            heapq.heappop(self._queue)
            del self._queued[head.token]
            gpu_ids = free_gpu_ids(self._capacity.gpus, self._in_use.values(), wanted.gpus)
            self._in_use[head.token] = {**wanted.as_details(), "gpu_ids": gpu_ids}
            self._launched[head.token] = time.time()
            starts.append(_Start(head.token, head.launch, gpu_ids))
        return starts

    def _start(self, starts: list[_Start]) -> None:
        for start in starts:
            status_dir = Path(start.launch["dir"])
            if proc.read_kill_order(status_dir) is not None:
                with self._lock:  # cancelled while it waited: give the slot back
                    self._in_use.pop(start.token, None)
                    self._launched.pop(start.token, None)
                continue
            env = {**os.environ, **start.launch["env"]}
            if start.gpu_ids:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, start.gpu_ids))
                proc.write_gpu_ids(status_dir, start.gpu_ids)
            cwd = Path(start.launch.get("cwd") or status_dir / "work")
            child = proc.launch(status_dir, start.launch["argv"], env, cwd=cwd)
            sampler = _start_gpu_sampler(status_dir, env, child.pid) if start.gpu_ids else None
            with self._lock:
                self._children[start.token] = child
                # A kill ordered while it was being launched found no child to signal:
                # ``kill`` writes its order under this lock, so one of us sees the other.
                ordered = proc.read_kill_order(status_dir) is not None
            if ordered:
                proc.signal_group(child.pid, signal.SIGTERM)
            self._reaper.watch(child, partial(self._reaped, start.token, sampler))

    def _reaped(self, token: str, sampler: subprocess.Popen[bytes] | None) -> None:
        """The shim of ``token`` has exited and been reaped: its slot goes to the next."""
        if sampler is not None:
            sampler.terminate()
            sampler.wait()
        with self._lock:
            self._in_use.pop(token, None)
            self._children.pop(token, None)
            starts = self._start_ready()
        self._start(starts)
        self._wake()

    def find(self, ref: AttemptRef) -> Submitted | None:
        with self._lock:
            if ref.token in self._queued or ref.token in self._in_use:
                return Submitted(native_id=ref.token, details=dict(ref.details))
        status_dir = self.status_dir(ref.job_id, ref.attempt)
        if proc.read_pid(status_dir) is None:
            return None  # never started: submitting again cannot run it twice
        return Submitted(native_id=ref.token, details={"dir": str(status_dir), **ref.details})

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        observations: dict[str, Observation] = {}
        with self._lock:
            waiting = []
            for ref in refs:
                if ref.token in self._queued:
                    waiting.append(ref)
                else:
                    observations[ref.token] = self._observe(ref, now)
            starts = self._start_ready()
            # Why the others wait, once slots freed by finished attempts are handed out:
            # the reason does not flicker with the order of this loop, and each distinct
            # request is judged once per poll, however long the queue.
            reasons = _WaitingReasons(self)
            for ref in waiting:
                queued = self._queued.get(ref.token)
                observations[ref.token] = (
                    reasons.of(queued) if queued is not None else _STARTING_NOW
                )
        self._start(starts)
        return observations

    def _observe(self, ref: AttemptRef, now: float) -> Observation:
        """What became of an attempt that is not in the queue (call under the lock)."""
        status_dir = self._dir(ref)
        nodes = (str(ref.details.get("host", self._host)),)
        started = proc.started_at(status_dir)
        finished = proc.read_exit(status_dir)  # complete once there: the attempt is over
        pid: int | None = None
        alive = False
        if finished is None:
            pid = proc.read_pid(status_dir)
            # Liveness, then the exit file again: the shim writes its exit status before it
            # dies, so a shim found dead has either left its status by now or never will.
            alive = pid is not None and proc.is_alive(pid, status_dir)
            finished = proc.read_exit(status_dir)
        order = proc.read_kill_order(status_dir)
        if finished is not None:
            self._release(ref.token)
            failure = _failure(order, finished.code)
            return Observation(
                phase=Phase.SUCCEEDED if failure is None else Phase.FAILED,
                failure_class=failure,
                exit_code=finished.code,
                signal=finished.signal,
                nodes=nodes,
                started_at=started,
                ended_at=finished.ended_at,
                reason=_sentence(failure, finished.code),
            )
        if alive and pid is not None:
            if ref.token not in self._in_use:  # started by an earlier control plane
                self._in_use[ref.token] = {
                    **{k: int(ref.details.get(k, 0)) for k in ("cpus", "mem_mb", "gpus")},
                    "gpu_ids": proc.read_gpu_ids(status_dir),
                }
            if order is not None and now - order.time > float(
                ref.details.get("grace_s", self._grace_s)
            ):
                proc.signal_group(pid, signal.SIGKILL)
            rss = proc.group_rss_mb(pid) if ref.details.get("mem_mb") else None
            return Observation(
                phase=Phase.RUNNING,
                nodes=nodes,
                started_at=started,
                rss_mb=rss,
                details={"pid": pid},
            )
        launched_at = self._launched.get(ref.token)
        if pid is None and launched_at is not None and ref.token in self._in_use:
            # Started, but the shim has not written its pid yet: running, never requeued.
            return Observation(phase=Phase.RUNNING, nodes=nodes, started_at=launched_at)
        self._release(ref.token)
        if pid is None and order is not None:
            return Observation(
                phase=Phase.FAILED,
                failure_class=FailureClass(order.failure_class),
                ended_at=now,
                reason="stopped before it started",
            )
        if pid is None and launched_at is None and "argv" in ref.details:
            self._enqueue(ref.token, dict(ref.details))  # queued before a restart
            return Observation(phase=Phase.PENDING, reason="queued again after a restart")
        failure = FailureClass(order.failure_class) if order else FailureClass.LOST
        return Observation(
            phase=Phase.FAILED,
            failure_class=failure,
            nodes=nodes,
            started_at=started,
            ended_at=now,
            signal=signal.SIGKILL if order else None,
            reason=(
                "killed after the grace period"
                if order
                else "the process group vanished without recording an exit status; "
                "something outside hpcbridge killed it"
            ),
        )

    def _release(self, token: str) -> None:
        self._in_use.pop(token, None)
        self._launched.pop(token, None)
        child = self._children.pop(token, None)
        if child is not None:
            child.poll()

    def _dir(self, ref: AttemptRef) -> Path:
        return Path(str(ref.details.get("dir") or self.status_dir(ref.job_id, ref.attempt)))

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        status_dir = self._dir(ref)
        with self._lock:
            queued = self._queued.pop(ref.token, None)
            if queued is not None:  # it never starts
                self._queue.remove(queued)
                heapq.heapify(self._queue)
            # The order first, then the process to signal: a launch in flight (the child
            # not registered yet) reads the order under this lock and signals it itself.
            proc.order_kill(status_dir, None, failure_class.value, now)
            child = self._children.get(ref.token)
        # The shim's pid is its process group: known from the child before its pid file.
        pid = child.pid if child is not None else proc.read_pid(status_dir)
        if pid is not None:
            proc.signal_group(pid, signal.SIGTERM)

    def nodes(self) -> list[NodeInfo]:
        reason = self._drain_reason()
        with self._lock:
            busy = bool(self._in_use)
        state = "drained" if reason is not None else "allocated" if busy else "idle"
        return [NodeInfo(self._host, state, ("local",), reason is not None, reason)]

    def drain(self, node: str, reason: str) -> None:
        self._check_node(node)
        self._runs.mkdir(parents=True, exist_ok=True)
        tmp = self._drain_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"reason": reason, "at": time.time()}) + "\n")
        os.replace(tmp, self._drain_file)

    def resume(self, node: str) -> None:
        self._check_node(node)
        self._drain_file.unlink(missing_ok=True)
        with self._lock:
            starts = self._start_ready()
        self._start(starts)

    def _check_node(self, node: str) -> None:
        if node != self._host:
            raise NotFoundError(f"no node {node!r} here; the local backend has {self._host!r}")

    def _drain_reason(self) -> str | None:
        try:
            return str(json.loads(self._drain_file.read_text())["reason"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def log_paths(self, ref: AttemptRef) -> tuple[Path | None, Path | None]:
        status_dir = self.status_dir(ref.job_id, ref.attempt)
        return status_dir / proc.STDOUT_FILE, status_dir / proc.STDERR_FILE

    def close(self) -> None:
        with self._lock:
            for child in self._children.values():
                child.poll()


class _WaitingReasons:
    """Why queued attempts wait, for one look at the queue (call under the lock): one
    observation per distinct request, shared by every attempt that asks for the same."""

    def __init__(self, backend: LocalBackend) -> None:
        self._backend = backend
        self._drained = backend._drain_reason()
        self._by_request: dict[Request, Observation] = {}

    def of(self, queued: _Queued) -> Observation:
        seen = self._by_request.get(queued.request)
        if seen is None:
            seen = Observation(phase=Phase.PENDING, reason=self._reason(queued.request))
            self._by_request[queued.request] = seen
        return seen

    def _reason(self, wanted: Request) -> str:
        if self._drained is not None:
            return f"this node is drained ({self._drained}); 'hpcbridge nodes resume' returns it"
        backend = self._backend
        shortfall = backend.capacity.shortfall(wanted, backend._in_use.values())
        return shortfall or "waiting behind jobs of higher priority or earlier submission"


_STARTING_NOW = Observation(phase=Phase.PENDING)
"""A queued attempt that this very poll handed a slot: it runs by the next one."""


def _write_script(status_dir: Path, spec: JobSpec) -> list[str]:
    status_dir.mkdir(parents=True, exist_ok=True)
    script = status_dir / "job.sh"
    text = spec.script or ""
    script.write_text(text if text.startswith("#!") else "#!/bin/sh\n" + text)
    script.chmod(0o700)
    return [str(script)]


def _unsupported_fields(spec: JobSpec) -> list[str]:
    """Valid fields that the local executor cannot honour: refused, never ignored."""
    problems: list[str] = []
    checks = [
        (
            spec.resources.nodes > 1,
            "resources.nodes: the local backend runs on one machine; "
            f"set nodes: 1 {_UNSUPPORTED_HINT}",
        ),
        (
            spec.resources.gpu_type is not None,
            "resources.gpu_type: the local backend cannot "
            f"choose GPU types; remove it {_UNSUPPORTED_HINT}",
        ),
        (
            spec.placement.partition is not None,
            "placement.partition: the local backend has no "
            f"partitions; remove it {_UNSUPPORTED_HINT}",
        ),
        (
            bool(spec.placement.features),
            "placement.features: the local backend has no node "
            f"features; remove them {_UNSUPPORTED_HINT}",
        ),
        (
            spec.placement.max_switches is not None or spec.placement.spread != "none",
            f"placement: switch and fault-domain placement need a cluster {_UNSUPPORTED_HINT}",
        ),
        (
            bool(spec.licences),
            f"licences: the local backend has no licence pool; remove them {_UNSUPPORTED_HINT}",
        ),
        (
            spec.burst.eligible,
            "burst: the local backend has no cloud partition to burst to; remove it or use "
            "backend: slurm",
        ),
        (
            spec.deadline is not None,
            "deadline: the local backend cannot honour deadlines yet; "
            f"remove it {_UNSUPPORTED_HINT}",
        ),
        (spec.cluster is not None, "cluster: the local backend has no clusters; remove it"),
        (
            spec.account is not None or spec.qos is not None,
            "account, qos: the local backend has no Slurm accounts or QOS; remove them "
            f"{_UNSUPPORTED_HINT}",
        ),
        (
            spec.reservation is not None or bool(spec.sbatch_args),
            "reservation, sbatch_args: the local backend has no Slurm reservations or sbatch; "
            f"remove them {_UNSUPPORTED_HINT}",
        ),
    ]
    problems.extend(message for failed, message in checks if failed)
    return problems


def _failure(order: proc.KillOrder | None, code: int) -> FailureClass | None:
    if order is not None:
        return FailureClass(order.failure_class)
    return None if code == 0 else FailureClass.APP_ERROR


def _sentence(failure: FailureClass | None, code: int) -> str | None:
    if failure is None:
        return None
    if failure is FailureClass.APP_ERROR:
        if code > 128:
            name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() else ""
            return f"the job was killed by signal {code - 128} {name}".rstrip()
        return f"the job exited with code {code}"
    return {
        FailureClass.TIMEOUT: "the job ran past its walltime and was stopped",
        FailureClass.OOM: "the job used more memory than it asked for and was stopped",
        FailureClass.CANCELLED: "the job was cancelled",
    }.get(failure, failure.value)
