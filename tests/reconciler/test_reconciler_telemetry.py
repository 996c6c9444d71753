"""What the loop reports besides job state: poll and cycle statistics, node counts, the
backend's accounting kept with each attempt, job-side checkpoint events, log context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import structlog
from tests.reconciler.test_reconciler_loop import Clock, FakeBackend, World

from hpcbridge.backends import (
    AttemptRef,
    LaunchRequest,
    NodeInfo,
    Submitted,
)
from hpcbridge.errors import TransientBackendError
from hpcbridge.states import FailureClass
from hpcbridge.store import JobId, MemoryStore

log = structlog.get_logger("tests.backend")


@dataclass
class NodesBackend(FakeBackend):
    """Also manages nodes; writes each attempt's job-side events where it says they are."""

    status_root: Path = Path()
    node_calls: int = 0

    def submit(self, request: LaunchRequest) -> Submitted:
        outcome = super().submit(request)
        assert isinstance(outcome, Submitted)
        status_dir = self.status_root / request.token
        details = {**outcome.details, "status_dir": str(status_dir)}
        return Submitted(outcome.native_id, details, outcome.running)

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        log.info("killing")  # carries the ids the loop bound, not ones passed here
        super().kill(ref, failure_class, now)

    def nodes(self) -> list[NodeInfo]:
        self.node_calls += 1
        return [
            NodeInfo("n1", "IDLE"),
            NodeInfo("n2", "ALLOCATED"),
            NodeInfo("n3", "IDLE", drained=True, reason="bad DIMM"),
        ]

    def drain(self, node: str, reason: str) -> None:
        return None

    def resume(self, node: str) -> None:
        return None


def make_world(tmp_path: Path) -> World:
    backend = NodesBackend(status_root=tmp_path / "status")
    return World(MemoryStore(), backend, Clock(), tmp_path / "checkpoints")


def test_polls_and_cycles_are_counted_and_an_outage_marks_the_backend_down(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path)
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()  # submits: nothing to poll yet
    reconciler.cycle()
    snapshot = reconciler.stats.snapshot()
    assert snapshot.cycles == 2
    assert snapshot.last_cycle_at == world.clock.now
    fake = snapshot.backends["fake"]
    assert (fake.polls, fake.errors, fake.up) == (1, 0, True)
    assert sum(fake.poll_duration.counts) == 1
    world.backend.poll_error = TransientBackendError("slurmctld down")
    reconciler.cycle()
    fake = reconciler.stats.snapshot().backends["fake"]
    assert (fake.polls, fake.errors, fake.up) == (2, 1, False)


def test_nodes_are_counted_by_state_now_and_then(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    backend = world.backend
    assert isinstance(backend, NodesBackend)
    reconciler = world.reconciler()
    reconciler.cycle()
    assert reconciler.stats.snapshot().backends["fake"].nodes == {
        "idle": 1,
        "allocated": 1,
        "drained": 1,
    }
    reconciler.cycle()
    assert backend.node_calls == 1  # not every cycle
    world.clock.advance(61)
    reconciler.cycle()
    assert backend.node_calls == 2


def test_a_backend_not_named_for_node_counts_is_counted_once_it_has_a_job(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path)
    backend = world.backend
    assert isinstance(backend, NodesBackend)
    reconciler = world.reconciler(node_backends=())
    reconciler.cycle()
    assert backend.node_calls == 0  # no job there yet: not even loaded for its nodes
    world.add("j1")
    reconciler.cycle()  # submits
    reconciler.cycle()  # polls: now it is in use
    assert backend.node_calls == 1
    assert reconciler.stats.snapshot().backends["fake"].nodes["idle"] == 1


def test_accounting_and_peak_memory_join_the_submission_details(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()
    token = world.token("j1")
    world.backend.finish(token, rss_mb=812.5, details={"slurm": {"state": "COMPLETED"}})
    reconciler.cycle()
    [attempt] = world.store.attempts(JobId("j1"))
    assert attempt.details["slot"] == "n1"  # recorded at submission, still there
    assert attempt.details["slurm"] == {"state": "COMPLETED"}
    assert attempt.details["max_rss_mb"] == 812.5


def test_checkpoint_events_the_job_wrote_reach_the_event_log(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.add("j1")
    reconciler = world.reconciler()
    reconciler.cycle()
    token = world.token("j1")
    status_dir = tmp_path / "status" / token
    status_dir.mkdir(parents=True)
    lines = [
        {"type": "checkpoint_saved", "time": 1001.5, "duration_s": 0.25, "bytes": 4096},
        {"type": "gpu_sample", "time": 1002.0, "utilization": 0.7},  # sampled, not copied
        {"type": "checkpoint_saved", "time": 1003.5, "duration_s": 0.5, "bytes": 8192},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"type": "checkpoint_sa'
    (status_dir / "events.jsonl").write_text(text)  # the last line is still being written
    world.backend.finish(token, FailureClass.NODE_FAILURE, exit_code=1)
    reconciler.cycle()
    saved = [e for e in world.store.events(JobId("j1")) if e.kind == "checkpoint_saved"]
    assert [(e.time, e.attempt, e.data["duration_s"]) for e in saved] == [
        (1001.5, 1, 0.25),
        (1003.5, 1, 0.5),
    ]


def test_log_lines_written_while_handling_a_job_carry_its_ids(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.add("j1", resources={"walltime": "10s"})
    reconciler = world.reconciler()
    reconciler.cycle()
    world.clock.advance(11)
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        reconciler.cycle()  # the walltime kill happens inside the job's log context
    [line] = [entry for entry in logs if entry["event"] == "killing"]
    attempt = world.store.attempts(JobId("j1"))[-1]
    assert line["job_id"] == "j1"
    assert line["attempt"] == 1
    assert line["backend"] == "fake"
    assert line["native_id"] == attempt.native_id
