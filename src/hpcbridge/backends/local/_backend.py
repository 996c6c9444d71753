"""The local executor: the embedded default that runs jobs on this machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from hpcbridge.backends._protocol import (
    AttemptRef,
    Deferred,
    LaunchRequest,
    Observation,
    Phase,
    Submitted,
    WakeUp,
)
from hpcbridge.backends.local import _process as proc
from hpcbridge.backends.local._capacity import Capacity, Request, free_gpu_ids
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass

_UNSUPPORTED_HINT = "or set backend: slurm"


class LocalBackend:
    """Runs each attempt as a process group under ``<home>/runs/<job>/attempt-<n>``."""

    name = "local"

    def __init__(self, settings: Settings, wake: WakeUp | None = None) -> None:
        self._runs = settings.runs_dir
        self._capacity = Capacity.detect(
            settings.local_cpus, settings.local_mem_mb, settings.local_gpus
        )
        self._grace_s = settings.kill_grace_s
        self._wake = wake or (lambda: None)
        self._host = socket.gethostname()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._in_use: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()

    @property
    def capacity(self) -> Capacity:
        return self._capacity

    def check(self, spec: JobSpec) -> list[str]:
        problems = list(_unsupported_fields(spec))
        problems += self._capacity.too_big(Request.of(spec.resources))
        if spec.command is not None and shutil.which(spec.command[0]) is None:
            problems.append(
                f"command[0]: {spec.command[0]!r} is not an executable on PATH; "
                "give the full path or install it"
            )
        return problems

    def status_dir(self, job_id: str, attempt: int) -> Path:
        return self._runs / job_id / f"attempt-{attempt}"

    def submit(self, request: LaunchRequest) -> Submitted | Deferred:
        spec = request.spec
        wanted = Request.of(spec.resources)
        with self._lock:
            in_use = list(self._in_use.values())
            shortfall = self._capacity.shortfall(wanted, in_use)
            if shortfall is not None:
                return Deferred(shortfall)
            gpu_ids = free_gpu_ids(self._capacity.gpus, in_use, wanted.gpus)
            status_dir = self.status_dir(request.job_id, request.attempt)
            env = {**os.environ, **spec.env, **request.env}
            if wanted.gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
            argv = list(spec.command) if spec.command else self._write_script(status_dir, spec)
            child = proc.launch(status_dir, argv, env, cwd=status_dir / "work")
            details: dict[str, object] = {
                "pid": child.pid,
                "create_time": proc.create_time(child.pid),
                "started_at": time.time(),
                "dir": str(status_dir),
                "host": self._host,
                "gpu_ids": gpu_ids,
                **wanted.as_details(),
            }
            self._in_use[request.token] = details
            self._children[request.token] = child
        threading.Thread(target=self._reap_later, args=(child,), daemon=True).start()
        return Submitted(native_id=str(child.pid), details=details, running=True)

    def _reap_later(self, child: subprocess.Popen[bytes]) -> None:
        child.wait()
        self._wake()

    @staticmethod
    def _write_script(status_dir: Path, spec: JobSpec) -> list[str]:
        status_dir.mkdir(parents=True, exist_ok=True)
        script = status_dir / "job.sh"
        text = spec.script or ""
        script.write_text(text if text.startswith("#!") else "#!/bin/sh\n" + text)
        script.chmod(0o700)
        return [str(script)]

    def find(self, ref: AttemptRef) -> Submitted | None:
        status_dir = self.status_dir(ref.job_id, ref.attempt)
        pid = proc.read_pid(status_dir)
        if pid is None:
            return None
        return Submitted(
            native_id=str(pid),
            details={
                **ref.details,
                "pid": pid,
                "create_time": proc.create_time(pid),
                "started_at": proc.started_at(status_dir),
                "dir": str(status_dir),
                "host": self._host,
            },
        )

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        observations = {
            ref.token: self._observe(ref, now) for ref in refs if ref.native_id is not None
        }
        with self._lock:
            for token, seen in observations.items():
                if seen.phase in (Phase.SUCCEEDED, Phase.FAILED):
                    self._in_use.pop(token, None)
                    child = self._children.pop(token, None)
                    if child is not None:
                        child.poll()
            for ref in refs:
                if (
                    ref.native_id is not None
                    and ref.token in observations
                    and (observations[ref.token].phase is Phase.RUNNING)
                ):
                    self._in_use.setdefault(ref.token, dict(ref.details))
        return observations

    def _observe(self, ref: AttemptRef, now: float) -> Observation:
        status_dir = Path(str(ref.details.get("dir") or self.status_dir(ref.job_id, ref.attempt)))
        pid = int(str(ref.native_id))
        identity = _float(ref.details.get("create_time"))
        started = _float(ref.details.get("started_at"))
        child = self._children.get(ref.token)
        if child is not None:
            child.poll()  # reap, so a finished child is not mistaken for a live zombie
        alive = identity is not None and proc.is_alive(pid, identity)
        finished = proc.read_exit(status_dir)
        order = proc.read_kill_order(status_dir)
        nodes = (str(ref.details.get("host", self._host)),)
        if finished is not None:
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
        if alive:
            if order is not None and now - order.time > self._grace_s:
                proc.signal_group(pid, signal.SIGKILL)
            rss = proc.group_rss_mb(pid) if ref.details.get("mem_mb") else None
            return Observation(phase=Phase.RUNNING, nodes=nodes, started_at=started, rss_mb=rss)
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

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        if ref.native_id is None:
            return
        status_dir = Path(str(ref.details.get("dir") or self.status_dir(ref.job_id, ref.attempt)))
        proc.order_kill(status_dir, int(ref.native_id), failure_class.value, now)

    def log_paths(self, ref: AttemptRef) -> tuple[Path | None, Path | None]:
        status_dir = self.status_dir(ref.job_id, ref.attempt)
        return status_dir / proc.STDOUT_FILE, status_dir / proc.STDERR_FILE

    def close(self) -> None:
        with self._lock:
            for child in self._children.values():
                child.poll()


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
            bool(spec.stage_in) or bool(spec.stage_out),
            "stage_in/stage_out: data staging is not available in this version; copy the data "
            "beforehand and remove these fields",
        ),
        (spec.burst.eligible, "burst: burst-to-cloud is not available in this version; remove it"),
        (
            spec.deadline is not None,
            "deadline: the local backend cannot honour deadlines yet; "
            f"remove it {_UNSUPPORTED_HINT}",
        ),
        (spec.cluster is not None, "cluster: the local backend has no clusters; remove it"),
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


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
