"""The harness the backend contract suite drives; one implementation per backend.

``test_backend_contract.py`` is parametrized over ``HARNESSES``. To hold a new backend to
the contract, write a class with this interface and add it to ``HARNESSES``:

``name``
    The backend's name, as in a spec's ``backend:`` field.
``backend``
    The Backend under test. ``restart()`` replaces it.
``shared_dir``
    A directory that both the jobs and the test process can read and write (the jobs
    report what they saw there: argv, environment, marker files).
``python``
    A Python 3 interpreter that jobs can run (``command: [python, -c, ...]``).
``spec(**fields) -> JobSpec``
    A valid spec for this backend; ``fields`` are top-level spec keys (``command``,
    ``script``, ``env``, ``resources``...).
``launch(spec, env=None) -> AttemptRef``
    Submit one attempt with a fresh job id and token, as the reconciler would, and return
    the reference the store would keep. Fails the test if the backend defers it.
``observe(ref) -> Observation``
    One ``poll()`` of that attempt alone.
``wait(ref, until=FINISHED, timeout_s=...) -> Observation``
    Poll until the attempt reaches one of the phases in ``until``; fails at the deadline.
``restart() -> Backend``
    A new backend instance on the same state, as after a control-plane crash.
``kill_outside(ref)``
    Make the attempt die without hpcbridge asking (SIGKILL to the process group locally;
    ``scancel --signal=KILL`` or killing the job step on a cluster).
``close()``
    Stop every process the test started and release the backend.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from hpcbridge.backends import AttemptRef, Backend, Deferred, LaunchRequest, Observation, Phase
from hpcbridge.backends.local import LocalBackend
from hpcbridge.backends.local._process import is_alive
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.store import new_token

FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED})
POLL_PAUSE_S = 0.02


class BackendHarness(Protocol):
    name: str
    backend: Backend
    shared_dir: Path
    python: str

    def spec(self, **fields: Any) -> JobSpec: ...

    def launch(self, spec: JobSpec, env: Mapping[str, str] | None = None) -> AttemptRef: ...

    def observe(self, ref: AttemptRef) -> Observation: ...

    def wait(
        self, ref: AttemptRef, until: Collection[Phase] = FINISHED, timeout_s: float = 20.0
    ) -> Observation: ...

    def restart(self) -> Backend: ...

    def kill_outside(self, ref: AttemptRef) -> None: ...

    def close(self) -> None: ...


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until true; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(POLL_PAUSE_S)


def local_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": f"sqlite:///{home / 'hpcbridge.db'}",
        "required_tags": (),
        "local_cpus": 8,
        "local_mem_mb": 64 * 1024,
        "local_gpus": 0,
        "poll_interval_s": 0.05,
        "kill_grace_s": 1.0,
        "lost_grace_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


class LocalHarness:
    name = "local"

    def __init__(self, root: Path, **settings: Any) -> None:
        self.settings = local_settings(root / "home", **settings)
        self.shared_dir = root / "shared"
        self.shared_dir.mkdir(parents=True)
        self.python = sys.executable
        self.backend: Backend = LocalBackend(self.settings)
        self._count = 0

    def spec(self, **fields: Any) -> JobSpec:
        document: dict[str, Any] = {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "contract",
            "command": ["true"],
            "backend": "local",
        }
        document.update(fields)
        return load_spec_document({k: v for k, v in document.items() if v is not None})

    def launch(self, spec: JobSpec, env: Mapping[str, str] | None = None) -> AttemptRef:
        self._count += 1
        job_id = f"jc{self._count:04d}"
        request = LaunchRequest(
            job_id=job_id,
            attempt=1,
            token=new_token(),
            spec=spec,
            env=dict(env or {"HPCBRIDGE_JOB_ID": job_id, "HPCBRIDGE_ATTEMPT": "1"}),
        )
        outcome = self.backend.submit(request)
        if isinstance(outcome, Deferred):
            pytest.fail(f"{self.name} deferred {job_id}: {outcome.reason}")
        return AttemptRef(
            job_id=job_id,
            attempt=1,
            token=request.token,
            native_id=outcome.native_id,
            details=dict(outcome.details),
        )

    def observe(self, ref: AttemptRef) -> Observation:
        observations = self.backend.poll([ref], time.time())
        return observations[ref.token]

    def wait(
        self, ref: AttemptRef, until: Collection[Phase] = FINISHED, timeout_s: float = 20.0
    ) -> Observation:
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.observe(ref)
            if seen.phase in until:
                return seen
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{ref.job_id} still {seen.phase} after {timeout_s}s, "
                    f"expected one of {sorted(until)}: {seen}"
                )
            time.sleep(POLL_PAUSE_S)

    def restart(self) -> Backend:
        self.backend = LocalBackend(self.settings)
        return self.backend

    def kill_outside(self, ref: AttemptRef) -> None:
        for pid in self._groups(self.settings.runs_dir / ref.job_id):
            os.killpg(pid, signal.SIGKILL)

    def close(self) -> None:
        for pid in self._groups(self.settings.runs_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.backend.close()

    @staticmethod
    def _groups(under: Path) -> list[int]:
        """Live process groups of attempts under ``under``, found by their pid files."""
        pids = []
        for pid_file in under.rglob("pid"):
            try:
                pid = int(pid_file.read_text())
            except (ValueError, OSError):
                continue
            if is_alive(pid, pid_file.parent):
                pids.append(pid)
        return pids


HARNESSES: dict[str, Callable[[Path], BackendHarness]] = {"local": LocalHarness}
"""Backend name -> factory taking a fresh directory; the contract suite runs each."""


@contextlib.contextmanager
def open_harness(name: str, root: Path) -> Iterator[BackendHarness]:
    harness = HARNESSES[name](root)
    try:
        yield harness
    finally:
        harness.close()
