"""What only the local executor does: slots for CPUs and GPUs, refusing cluster-only fields,
and enforcing memory, walltime and the SIGTERM-then-SIGKILL grace through the reconciler."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.backends._harness import LocalHarness, wait_for

from hpcbridge.backends import AttemptRef, Backend, Deferred, LaunchRequest, Observation, Phase
from hpcbridge.reconciler import Policy, Reconciler
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Job, JobId, MemoryStore, NewJob, new_token
from hpcbridge.telemetry import latest_gpu_utilization

SLEEP = "import time; time.sleep(60)"


def local(tmp_path: Path, **settings: Any) -> Iterator[LocalHarness]:
    harness = LocalHarness(tmp_path, **settings)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[LocalHarness]:
    yield from local(tmp_path)


@pytest.fixture
def one_cpu(tmp_path: Path) -> Iterator[LocalHarness]:
    yield from local(tmp_path, local_cpus=1)


@pytest.fixture
def two_gpus(tmp_path: Path) -> Iterator[LocalHarness]:
    yield from local(tmp_path, local_gpus=2)


def submit(h: LocalHarness, job_id: str, **fields: Any) -> tuple[AttemptRef | None, str | None]:
    """Submit without failing on Deferred: (ref, None) when accepted, (None, why) when not."""
    request = LaunchRequest(
        job_id=job_id,
        attempt=1,
        token=new_token(),
        spec=h.spec(**fields),
        env={"HPCBRIDGE_JOB_ID": job_id},
    )
    outcome = h.backend.submit(request)
    if isinstance(outcome, Deferred):
        return None, outcome.reason
    return AttemptRef(job_id, 1, request.token, outcome.native_id, dict(outcome.details)), None


def has_text(path: Path) -> Callable[[], bool]:
    return lambda: path.exists() and path.read_text() != ""


def waiting_reason(h: LocalHarness, ref: AttemptRef | None, deferred: str | None) -> str:
    """Why a job does not start now, whichever way the backend says it (Deferred or pending)."""
    if ref is None:
        assert deferred is not None
        return deferred
    seen = h.observe(ref)
    assert seen.phase is Phase.PENDING, seen
    assert seen.reason is not None
    return seen.reason


# -- slots -------------------------------------------------------------------------------------


def test_a_second_job_waits_for_the_only_cpu(one_cpu: LocalHarness) -> None:
    h = one_cpu
    marker = h.shared_dir / "second-ran"
    first = h.launch(h.spec(command=[h.python, "-c", SLEEP]))
    assert h.wait(first, until={Phase.RUNNING}).phase is Phase.RUNNING
    ref, deferred = submit(h, "second", command=["touch", str(marker)])
    reason = waiting_reason(h, ref, deferred)
    assert "CPU" in reason
    assert "1 of 1" in reason
    assert not marker.exists()
    h.backend.kill(first, FailureClass.CANCELLED, time.time())
    h.wait(first, timeout_s=10)
    if ref is None:  # a deferring backend is asked again, as the reconciler would
        ref, deferred = submit(h, "second", command=["touch", str(marker)])
        assert ref is not None, deferred
    assert h.wait(ref).phase is Phase.SUCCEEDED
    assert marker.exists()


def test_cpus_per_node_counts_tasks_times_cpus(one_cpu: LocalHarness) -> None:
    problems = one_cpu.backend.check(one_cpu.spec(resources={"tasks_per_node": 2}))
    assert len(problems) == 1
    assert problems[0].startswith("resources:")
    assert "2 CPUs" in problems[0]


def test_gpus_get_distinct_devices(two_gpus: LocalHarness) -> None:
    h = two_gpus
    program = (
        "import os, sys, time; open(sys.argv[1], 'w').write("
        "os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')); time.sleep(60)"
    )
    outs = [h.shared_dir / f"gpu{i}" for i in range(2)]
    refs = [
        h.launch(h.spec(command=[h.python, "-c", program, str(out)], resources={"gpus": 1}))
        for out in outs
    ]
    for out in outs:
        wait_for(has_text(out), 10, f"{out.name} to report its GPU")
    assert sorted(out.read_text() for out in outs) == ["0", "1"]
    third, deferred = submit(h, "third", command=["true"], resources={"gpus": 1})
    assert "GPU" in waiting_reason(h, third, deferred)
    for ref in refs:
        h.backend.kill(ref, FailureClass.CANCELLED, time.time())


def test_a_gpu_job_gets_utilisation_samples(
    two_gpus: LocalHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in nvidia-smi answers for NVML (no GPU here); the sampler runs beside the
    job on its devices and is gone when the job is."""
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "nvidia-smi").write_text('#!/bin/sh\necho "$@" > "$0.args"\necho 42\n')
    (tools / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    h = two_gpus
    ref = h.launch(h.spec(command=["sleep", "1"], resources={"gpus": 1}))
    assert h.wait(ref).phase is Phase.SUCCEEDED
    status_dir = Path(ref.details["dir"])
    assert latest_gpu_utilization(status_dir, since=0) == pytest.approx(0.42)
    assert (tools / "nvidia-smi.args").read_text().strip().endswith("--id=0")
    samplers = [
        p for p in psutil.process_iter(["cmdline"]) if str(status_dir) in (p.info["cmdline"] or [])
    ]
    assert samplers == []


def test_a_job_without_gpus_sees_none(two_gpus: LocalHarness) -> None:
    h = two_gpus
    out = h.shared_dir / "env.json"
    program = (
        "import json, os, sys; json.dump(os.environ.get('CUDA_VISIBLE_DEVICES'), "
        "open(sys.argv[1], 'w'))"
    )
    both = h.shared_dir / "both.json"
    ref = h.launch(h.spec(command=[h.python, "-c", program, str(both)], resources={"gpus": 2}))
    assert h.wait(ref).phase is Phase.SUCCEEDED
    assert json.loads(both.read_text()) == "0,1"
    ref = h.launch(h.spec(command=[h.python, "-c", program, str(out)]))
    assert h.wait(ref).phase is Phase.SUCCEEDED
    assert json.loads(out.read_text()) in (None, "")


def test_each_job_sees_the_environment_as_it_was_at_its_submission(
    harness: LocalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One launcher serves every job: a variable set, changed or removed between two
    submissions reaches the next job, and only that one."""
    h = harness
    program = (
        "import json, os, sys; json.dump(os.environ.get('HB_TEST_VAR'), open(sys.argv[1], 'w'))"
    )
    seen: list[str | None] = []
    for value in ("one", "two", None):
        if value is None:
            monkeypatch.delenv("HB_TEST_VAR")
        else:
            monkeypatch.setenv("HB_TEST_VAR", value)
        out = h.shared_dir / f"env-{len(seen)}.json"
        ref = h.launch(h.spec(command=[h.python, "-c", program, str(out)]))
        assert h.wait(ref).phase is Phase.SUCCEEDED
        seen.append(json.loads(out.read_text()))
    assert seen == ["one", "two", None]


# -- what the local executor refuses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field_path"),
    [
        ({"resources": {"nodes": 2}}, "resources.nodes"),
        ({"resources": {"gpus": 1, "gpu_type": "a100"}}, "resources.gpu_type"),
        ({"placement": {"partition": "gpu"}}, "placement.partition"),
        ({"placement": {"features": ["ib"]}}, "placement.features"),
        ({"placement": {"max_switches": 1}}, "placement"),
        ({"placement": {"spread": "fault_domain"}}, "placement"),
        ({"licences": {"matlab": 1}}, "licences"),
        ({"burst": {"eligible": True}}, "burst"),
        ({"deadline": "2030-01-01T00:00:00Z"}, "deadline"),
        ({"cluster": "hpc1"}, "cluster"),
        ({"resources": {"cpus_per_task": 64}}, "resources"),
        ({"resources": {"mem": "10T"}}, "resources.mem"),
        ({"resources": {"gpus": 1}}, "resources.gpus"),
        ({"command": ["no-such-program-hpcbridge-test"]}, "command[0]"),
    ],
)
def test_check_refuses_what_it_cannot_honour(
    harness: LocalHarness, fields: dict[str, Any], field_path: str
) -> None:
    problems = harness.backend.check(harness.spec(**fields))
    matching = [p for p in problems if p.startswith(field_path + ":")]
    assert len(matching) == 1, problems
    assert any(word in matching[0] for word in ("remove", "lower", "set", "install", "copy"))


def test_check_accepts_a_plain_job(harness: LocalHarness) -> None:
    spec = harness.spec(
        command=[harness.python, "-c", "pass"],
        resources={"cpus_per_task": 2, "mem": "1G", "walltime": "1h"},
    )
    assert harness.backend.check(spec) == []


# -- limits enforced through the reconciler ----------------------------------------------------


def drive(h: LocalHarness, timeout_s: float, **spec_fields: Any) -> tuple[Job, float]:
    """Run one job through a real Reconciler and this backend; return it and the seconds."""
    store = MemoryStore()
    backends: dict[str, Backend] = {"local": h.backend}
    reconciler = Reconciler(
        store,
        backends,
        policy=Policy(lost_grace_s=5.0),
        checkpoints_dir=h.shared_dir / "checkpoints",
    )
    [job] = store.create_jobs(
        [
            NewJob(
                job_id=JobId("jlimit"),
                name="limit",
                project="p",
                workload_class="batch",
                backend="local",
                spec=h.spec(**spec_fields).to_document(),
            )
        ],
        now=time.time(),
        actor="test",
    )
    started = time.monotonic()

    def finished() -> bool:
        report = reconciler.cycle()
        assert report.errors == []
        return store.get_job(job.job_id).state.terminal

    wait_for(finished, timeout_s, "the job to finish")
    return store.get_job(job.job_id), time.monotonic() - started


def test_memory_over_the_request_is_killed_as_oom(harness: LocalHarness) -> None:
    program = "import time; hog = b'x' * (200 << 20); time.sleep(60)"
    job, _ = drive(harness, 20, command=[harness.python, "-c", program], resources={"mem": "50M"})
    assert (job.state, job.failure_class) == (JobState.FAILED, FailureClass.OOM)
    assert job.reason is not None
    assert "memory" in job.reason


def test_walltime_is_enforced_quickly(harness: LocalHarness) -> None:
    job, seconds = drive(harness, 20, command=["sleep", "30"], resources={"walltime": "1s"})
    assert (job.state, job.failure_class) == (JobState.FAILED, FailureClass.TIMEOUT)
    assert job.reason is not None
    assert "walltime" in job.reason
    assert seconds < 10


def test_sigterm_then_sigkill_after_the_grace(harness: LocalHarness) -> None:
    h = harness  # kill_grace_s is 1 s
    ready = h.shared_dir / "ignoring"
    program = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').write('x'); time.sleep(60)"
    )
    ref = h.launch(h.spec(command=[h.python, "-c", program, str(ready)]))
    wait_for(ready.exists, 10, "the job to ignore SIGTERM")
    ordered = time.monotonic()
    h.backend.kill(ref, FailureClass.TIMEOUT, time.time())
    time.sleep(0.3)  # SIGTERM has long arrived; a job that obeys it would be gone
    assert h.observe(ref).phase is Phase.RUNNING
    seen: Observation = h.wait(ref, timeout_s=10)
    elapsed = time.monotonic() - ordered
    assert (seen.phase, seen.failure_class) == (Phase.FAILED, FailureClass.TIMEOUT)
    assert seen.signal == signal.SIGKILL
    assert 1.0 <= elapsed < 5.0
