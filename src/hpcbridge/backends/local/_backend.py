"""The local executor: the embedded default that runs jobs on this machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any
from weakref import WeakMethod

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
from hpcbridge.backends.local._capacity import Capacity, Request
from hpcbridge.backends.local._launcher import make_dirs, open_log
from hpcbridge.backends.local._link import LauncherLink
from hpcbridge.config import Settings
from hpcbridge.containers import wrap_argv
from hpcbridge.errors import BackendError, NotFoundError
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass

_UNSUPPORTED_HINT = "or set backend: slurm"
VERIFY_MODULE = "hpcbridge.checkpoint.verify_inputs"
GPU_SAMPLE_INTERVAL_S = 5.0
LAUNCH_GRACE_S = 10.0
"""How long a pid file may stay claimed but empty (a launcher between its claim and the
spawn) before the attempt counts as lost: its launcher died while starting it."""


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


@dataclass(order=True)
class _Queued:
    """An attempt handed to the launcher, not started yet; ordered by priority, then arrival."""

    order: tuple[int, float, str]
    token: str = field(compare=False)
    launch: dict[str, Any] = field(compare=False)
    request: Request = field(compare=False)

    def message(self) -> dict[str, Any]:
        launch = self.launch
        return {
            "op": "queue",
            "token": self.token,
            "order": list(self.order),
            "need": [self.request.cpus, self.request.mem_mb, self.request.gpus],
            "dir": launch["dir"],
            "cwd": launch.get("cwd") or str(Path(launch["dir"]) / "work"),
            "argv": launch["argv"],
            "env": launch["env"],
        }


class LocalBackend:
    """A small scheduler for this machine: queues attempts and starts them as slots free up.

    Each attempt runs as a process group under ``<home>/runs/<job>/attempt-<n>``, started,
    reaped and recorded by one launcher process (``_launcher``), which also holds the
    queue and starts the next attempt the moment a slot frees. What is needed to start an
    attempt is kept in the store (the attempt's details), so after a restart queued
    attempts are queued again and running ones are found by their pid file.
    """

    name = "local"

    def __init__(self, settings: Settings, wake: WakeUp | None = None) -> None:
        self._runs = settings.runs_dir
        self._capacity = Capacity.detect(
            settings.local_cpus, settings.local_mem_mb, settings.local_gpus
        )
        self._grace_s = settings.kill_grace_s
        self._wake: WakeUp = wake or _no_wake
        self._host = socket.gethostname()
        self._queued: dict[str, _Queued] = {}  # handed to the launcher, not started yet
        self._in_use: dict[str, dict[str, Any]] = {}  # token -> resources of a live attempt
        self._reserved: set[str] = set()  # live attempts the launcher holds as reservations
        self._samplers: dict[str, subprocess.Popen[bytes]] = {}
        self._closed = False  # a late reply from the launcher starts no sampler
        self._lock = threading.Lock()
        self._link: LauncherLink | None = None
        self._link_lock = threading.Lock()  # taken before ``_lock``, never while holding it
        self._environ: dict[str, str] = {}  # what the launcher was last told
        self._environ_raw: dict[Any, Any] | None = None
        self._environ_now: dict[str, str] = {}
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
        # Made here, beside the launcher rather than in its way: it starts jobs one at a time,
        # and creating these was half of its work for a short job (it makes any that are
        # missing, as after a restart).
        make_dirs(str(status_dir.parent), str(status_dir), launch["cwd"])
        for log in (proc.STDOUT_FILE, proc.STDERR_FILE):
            os.close(open_log(str(status_dir / log)))
        self._enqueue(request.token, launch)
        # Started by the launcher within milliseconds; the next poll says so.
        return Submitted(native_id=request.token, details=launch)

    def _enqueue(self, token: str, launch: dict[str, Any]) -> None:
        with self._lock:
            if token in self._queued or token in self._in_use:
                return
            entry = _Queued(
                (-int(launch.get("priority", 0)), launch["queued_at"], token),
                token,
                launch,
                Request(launch["cpus"], launch["mem_mb"], launch["gpus"]),
            )
            self._queued[token] = entry
        self._send([entry.message()])

    # -- the launcher ------------------------------------------------------------------------

    def _send(self, messages: Sequence[dict[str, Any]]) -> None:
        """Send to the launcher; start one (and send it the whole state) if none is running."""
        with self._link_lock:
            environ = self._environment_now()  # jobs see this process's environment as it is now
            if environ != self._environ and self._link is not None:
                messages = [{"op": "environ", "env": environ}, *messages]
            if self._link is not None and self._link.alive:
                try:
                    self._link.send(messages)
                    self._environ = environ
                    return
                except OSError:
                    self._link.alive = False
            self._link = self._connect()
            self._environ = environ

    def _environment_now(self) -> dict[str, str]:
        """``dict(os.environ)``, decoded again only when its raw entries changed: decoding it
        for every submission cost as much as the rest of the submission."""
        raw = getattr(os.environ, "_data", None)  # CPython's raw mapping, compared in C
        if raw is None or raw != self._environ_raw:
            self._environ_raw, self._environ_now = raw and dict(raw), dict(os.environ)
        return self._environ_now

    def _connect(self) -> LauncherLink:
        """A new launcher, told the capacity, what runs already and what waits (in order)."""
        link = LauncherLink(
            WeakMethod(self._on_reply), WeakMethod(self._wake_up), self._runs / ".launcher.log"
        )
        capacity = self._capacity
        with self._lock:
            state: list[dict[str, Any]] = [
                {
                    "op": "capacity",
                    "need": [capacity.cpus, capacity.mem_mb, capacity.gpus],
                    "drain_file": str(self._drain_file),
                }
            ]
            for token, used in self._in_use.items():  # started by a launcher before this one
                self._reserved.add(token)
                state.append(_reserve(token, used))
            state += [entry.message() for entry in sorted(self._queued.values())]
        try:
            link.send(state)
        except OSError as exc:
            raise BackendError(f"the local launcher exited at once: {exc}") from exc
        return link

    def _wake_up(self) -> None:
        self._wake()

    def _on_reply(self, reply: Mapping[str, Any]) -> None:
        """What the launcher did (called on its reader thread)."""
        token = str(reply["token"])
        op = reply["op"]
        sampler: subprocess.Popen[bytes] | None = None
        with self._lock:
            queued = self._queued.pop(token, None)
            if op == "started":
                cpus, mem_mb, gpus = reply["need"]
                gpu_ids = list(reply["gpu_ids"])
                self._in_use[token] = {
                    "cpus": cpus,
                    "mem_mb": mem_mb,
                    "gpus": gpus,
                    "gpu_ids": gpu_ids,
                }
                if gpu_ids and queued is not None and not self._closed:
                    env = {
                        **os.environ,
                        **queued.launch["env"],
                        "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpu_ids)),
                    }
                    started = _start_gpu_sampler(Path(queued.launch["dir"]), env, reply["pid"])
                    if started is not None:
                        self._samplers[token] = started
                return
            if op == "exited":
                self._in_use.pop(token, None)
                sampler = self._samplers.pop(token, None)
            settled = not self._queued and not self._in_use
        if sampler is not None:
            sampler.terminate()
            sampler.wait()
        self._wake(settled=settled)

    def find(self, ref: AttemptRef) -> Submitted | None:
        with self._lock:
            if ref.token in self._queued or ref.token in self._in_use:
                return Submitted(native_id=ref.token, details=dict(ref.details))
        status_dir = self.status_dir(ref.job_id, ref.attempt)
        if proc.started_at(status_dir) is None:
            return None  # never claimed: submitting again cannot run it twice
        return Submitted(native_id=ref.token, details={"dir": str(status_dir), **ref.details})

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        observations: dict[str, Observation] = {}
        messages: list[dict[str, Any]] = []
        with self._lock:
            waiting = []
            for ref in refs:
                if ref.token in self._queued:
                    waiting.append(ref)
                else:
                    observations[ref.token] = self._observe(ref, now, messages)
            # Why the others wait: each distinct request is judged once per poll.
            reasons = _WaitingReasons(self)
            for ref in waiting:
                queued = self._queued.get(ref.token)
                observations[ref.token] = (
                    reasons.of(queued) if queued is not None else _STARTING_NOW
                )
            relaunch = bool(self._queued) and (self._link is None or not self._link.alive)
        if messages or relaunch:
            self._send(messages)
        return observations

    def _observe(self, ref: AttemptRef, now: float, messages: list[dict[str, Any]]) -> Observation:
        """What became of an attempt that is not in the queue (call under the lock)."""
        status_dir = self._dir(ref)
        nodes = (str(ref.details.get("host", self._host)),)
        started = proc.started_at(status_dir)
        finished = proc.read_exit(status_dir)  # complete once there: the attempt is over
        pid: int | None = None
        alive = False
        if finished is None and started is not None:
            pid = proc.read_pid(status_dir)
            # Liveness, then the exit file again: the launcher writes the exit status before
            # it reaps the process, so one found gone has left its status by now or never will.
            alive = pid is not None and proc.is_alive(pid, status_dir)
            finished = proc.read_exit(status_dir)
        order = proc.read_kill_order(status_dir)
        if finished is not None:
            self._release(ref.token, messages)
            failure = _failure(order, finished)
            return Observation(
                phase=Phase.SUCCEEDED if failure is None else Phase.FAILED,
                failure_class=failure,
                exit_code=finished.code,
                signal=finished.signal,
                nodes=nodes,
                started_at=started,
                ended_at=finished.ended_at,
                reason=_sentence(failure, finished),
            )
        if alive and pid is not None:
            if ref.token not in self._in_use:  # started by an earlier control plane
                self._in_use[ref.token] = {
                    **{k: int(ref.details.get(k, 0)) for k in ("cpus", "mem_mb", "gpus")},
                    "gpu_ids": proc.read_gpu_ids(status_dir),
                }
                self._reserved.add(ref.token)
                messages.append(_reserve(ref.token, self._in_use[ref.token]))
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
        if started is not None and pid is None and now - started < LAUNCH_GRACE_S:
            # Claimed by a launcher that has not written the pid yet (one of an earlier
            # control plane): it runs in a moment, or that launcher died while starting it.
            return Observation(phase=Phase.PENDING, reason="being started")
        self._release(ref.token, messages)
        if started is None and order is not None:
            return Observation(
                phase=Phase.FAILED,
                failure_class=FailureClass(order.failure_class),
                ended_at=now,
                reason="stopped before it started",
            )
        if started is None and "argv" in ref.details:
            # Queued before a restart: queued again (``_enqueue`` takes the lock itself).
            launch = dict(ref.details)
            entry = _Queued(
                (-int(launch.get("priority", 0)), launch["queued_at"], ref.token),
                ref.token,
                launch,
                Request(launch["cpus"], launch["mem_mb"], launch["gpus"]),
            )
            self._queued[ref.token] = entry
            messages.append(entry.message())
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
                else "it ended without a recorded exit status: the launcher that watched it "
                "was killed, or something outside hpcbridge killed it"
            ),
        )

    def _release(self, token: str, messages: list[dict[str, Any]]) -> None:
        self._in_use.pop(token, None)
        if token in self._reserved:
            self._reserved.discard(token)
            messages.append({"op": "release", "token": token})

    def _dir(self, ref: AttemptRef) -> Path:
        return Path(str(ref.details.get("dir") or self.status_dir(ref.job_id, ref.attempt)))

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        status_dir = self._dir(ref)
        with self._lock:
            queued = self._queued.pop(ref.token, None)
            # The order first, then the pid to signal: a start in flight (no pid on disk
            # yet) reads the order after writing its pid, and signals it itself.
            proc.order_kill(status_dir, None, failure_class.value, now)
        if queued is not None:  # it never starts
            self._send([{"op": "drop", "token": ref.token}])
        pid = proc.read_pid(status_dir)
        if pid is not None and proc.read_exit(status_dir) is None:
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
            waiting = bool(self._queued)
        if waiting:
            self._send([{"op": "wake"}])

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
        """What waits is not started (a later control plane queues it again from the
        store); what runs goes on, and the launcher records how it ends."""
        with self._link_lock:
            if self._link is not None:
                self._link.close()
                self._link = None
        with self._lock:
            self._closed = True
            samplers, self._samplers = list(self._samplers.values()), {}
        for sampler in samplers:  # the launcher no longer tells us when their jobs end
            sampler.terminate()
            sampler.wait()


class _WaitingReasons:
    """Why queued attempts wait, for one look at the queue (call under the lock): one
    observation per distinct reason, shared by every attempt that waits for the same."""

    def __init__(self, backend: LocalBackend) -> None:
        self._capacity = backend.capacity
        self._in_use = list(backend._in_use.values())
        self._queued = backend._queued
        self._drained = backend._drain_reason()
        self._blocked: _Queued | bool | None = False  # not looked for yet
        self._seen: dict[str, Observation] = {}

    def of(self, queued: _Queued) -> Observation:
        if self._drained is not None:
            reason = f"this node is drained ({self._drained}); 'hpcbridge nodes resume' returns it"
        else:
            blocked = self._first_blocked()
            if blocked is None or queued.order < blocked.order:
                return _STARTING_NOW  # the launcher is starting it
            shortfall = self._capacity.shortfall(queued.request, self._in_use)
            reason = shortfall or "waiting behind jobs of higher priority or earlier submission"
        seen = self._seen.get(reason)
        if seen is None:
            seen = self._seen[reason] = Observation(phase=Phase.PENDING, reason=reason)
        return seen

    def _first_blocked(self) -> _Queued | None:
        """The first queued attempt, in the launcher's strict order, that does not fit."""
        if self._blocked is False:
            self._blocked = None
            used = list(self._in_use)
            for entry in sorted(self._queued.values(), key=attrgetter("order")):
                if self._capacity.shortfall(entry.request, used) is not None:
                    self._blocked = entry
                    break
                used.append(entry.request.as_details())
        assert self._blocked is not True
        return self._blocked


_STARTING_NOW = Observation(phase=Phase.PENDING)
"""A queued attempt that this very poll handed a slot: it runs by the next one."""


def _no_wake(*, settled: bool = False) -> None:
    """Without a reconciler to wake (a backend used on its own)."""


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


def _failure(order: proc.KillOrder | None, finished: proc.Exit) -> FailureClass | None:
    if order is not None:
        return FailureClass(order.failure_class)
    if finished.signal == signal.SIGKILL:  # not ours: an operator, the OOM killer, a node
        return FailureClass.LOST
    return None if finished.code == 0 else FailureClass.APP_ERROR


def _sentence(failure: FailureClass | None, finished: proc.Exit) -> str | None:
    code = finished.code
    if failure is None:
        return None
    if failure is FailureClass.LOST:
        return (
            "the job was killed by signal 9 SIGKILL, not by hpcbridge: "
            "something outside hpcbridge killed it"
        )
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


def _reserve(token: str, used: Mapping[str, Any]) -> dict[str, Any]:
    need = [int(used.get(k, 0)) for k in ("cpus", "mem_mb", "gpus")]
    return {"op": "reserve", "token": token, "need": need, "gpu_ids": list(used.get("gpu_ids", []))}
