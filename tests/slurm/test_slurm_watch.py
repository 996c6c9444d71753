"""The queue view (``_watch``): when the backend looks at the queue, and what the jobs'
status files say in between. Pure: an injected clock, records built by hand, no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.backends import AttemptRef
from hpcbridge.backends.slurm._backend import Backoff
from hpcbridge.backends.slurm._records import JobRecord
from hpcbridge.backends.slurm._watch import (
    EVENT_INTERVAL_S,
    MAX_STRETCH,
    SETTLE_S,
    SLOW_LOOK_S,
    START_INTERVAL_S,
    QueueView,
    RunMark,
    ended_since,
    exact_exit,
    read_run_mark,
    started_since,
    wants_look,
)
from hpcbridge.errors import TransientBackendError

INTERVAL_S = 30.0


def record(
    state: str,
    *,
    restarts: int = 0,
    requeue: bool | None = False,
    exit_code: int | None = None,
    signal: int | None = None,
) -> JobRecord:
    return JobRecord(
        key="7",
        job_id=7,
        name="hb-x",
        state=state,
        source="queue",
        restarts=restarts,
        requeue=requeue,
        exit_code=exit_code,
        signal=signal,
    )


def ref(native_id: str | None = "7", token: str = "t7") -> AttemptRef:
    return AttemptRef(job_id="j", attempt=1, token=token, native_id=native_id)


# -- due / may_bring_forward -------------------------------------------------------------


def test_first_poll_looks_then_waits_for_the_interval() -> None:
    view = QueueView()
    assert view.due(0.0, INTERVAL_S)
    view.looked({}, 0.0, set())
    assert not view.due(INTERVAL_S - 0.1, INTERVAL_S)
    assert view.due(INTERVAL_S, INTERVAL_S)


def test_a_kill_or_requeue_forces_the_next_look_once() -> None:
    view = QueueView()
    view.looked({}, 0.0, set())
    view.forced = True
    assert view.due(1.0, INTERVAL_S)
    view.looked({}, 1.0, set())
    assert not view.due(2.0, INTERVAL_S)


def test_interval_zero_looks_at_every_poll() -> None:
    view = QueueView()
    view.looked({}, 5.0, set())
    assert view.due(5.0, 0.0)


def test_events_bring_a_look_forward_at_most_every_event_interval() -> None:
    view = QueueView()
    assert view.may_bring_forward(0.0, INTERVAL_S)
    view.event_look_at = 10.0
    assert not view.may_bring_forward(10.0 + EVENT_INTERVAL_S - 0.1, INTERVAL_S)
    assert view.may_bring_forward(10.0 + EVENT_INTERVAL_S, INTERVAL_S)
    # A shorter queue interval than the event interval is not slowed down by events.
    assert view.may_bring_forward(11.0, 1.0)


def test_slow_answers_space_out_the_looks_until_a_quick_one() -> None:
    view = QueueView()
    view.looked({}, 0.0, set(), took_s=SLOW_LOOK_S)
    assert view.stretch == 2
    assert not view.due(INTERVAL_S, INTERVAL_S)
    assert view.due(2 * INTERVAL_S, INTERVAL_S)
    view.event_look_at = 0.0
    assert not view.may_bring_forward(EVENT_INTERVAL_S, INTERVAL_S)
    for _ in range(10):
        view.looked({}, 0.0, set(), took_s=SLOW_LOOK_S * 3)
    assert view.stretch == MAX_STRETCH
    assert view.due(0.0, INTERVAL_S) is False
    view.forced = True
    assert view.due(0.0, INTERVAL_S)  # a kill still gets its look
    view.looked({}, 1.0, set(), took_s=0.01)
    assert view.stretch == 1


def test_errors_back_off_doubling_to_a_cap_and_reset_on_success() -> None:
    backoff = Backoff(initial_s=2.0, max_s=10.0)
    backoff.check("c", 0.0)
    error = TransientBackendError("squeue timed out")
    waits = []
    for _ in range(5):
        backoff.failed(0.0, error)
        waits.append(backoff.until)
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]
    with pytest.raises(TransientBackendError, match="unreachable 5 time"):
        backoff.check("c", 9.0)
    backoff.check("c", 10.0)
    backoff.succeeded()
    backoff.check("c", 0.0)


def test_submitted_ids_are_unseen_until_a_look_taken_after_them() -> None:
    view = QueueView()
    view.submitted(["7", "8"])
    covered = view.covered_now()
    view.submitted(["9"])  # submitted while the look was in flight
    view.looked({}, 0.0, covered)
    assert not view.unseen("7") and not view.unseen("8")
    assert view.unseen("9")


def test_forget_drops_end_sightings_of_attempts_no_longer_polled() -> None:
    view = QueueView(ended_seen={"7": 1.0, "8": 2.0})
    view.forget(["8"])
    assert view.ended_seen == {"8": 2.0}


# -- status files --------------------------------------------------------------------------


def test_read_run_mark(tmp_path: Path) -> None:
    assert read_run_mark(str(tmp_path / "missing")) is None
    assert read_run_mark(str(tmp_path)) is None
    (tmp_path / "run-0").mkdir()
    (tmp_path / "run-0" / "exit").write_text("3\n")
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-x").mkdir()  # not a run
    assert read_run_mark(str(tmp_path)) == RunMark(1, None)
    (tmp_path / "run-1" / "exit").write_text("0\n")
    assert read_run_mark(str(tmp_path)) == RunMark(1, 0)
    (tmp_path / "run-1" / "exit").write_text("garbage")
    assert read_run_mark(str(tmp_path)) == RunMark(1, None)


@pytest.mark.parametrize(
    ("mark", "seen", "expected"),
    [
        (None, record("PENDING"), False),
        (RunMark(0, None), None, True),  # started before any look showed it
        (RunMark(0, None), record("PENDING"), True),
        (RunMark(0, None), record("RUNNING"), False),
        (RunMark(0, 0), record("PENDING"), False),  # ended already: not a start
        (RunMark(1, None), record("RUNNING", restarts=0), True),  # a requeued run started
        (RunMark(0, None), record("PENDING", restarts=1), False),  # an old run's mark
    ],
)
def test_started_since(mark: RunMark | None, seen: JobRecord | None, expected: bool) -> None:
    assert started_since(mark, seen) is expected


@pytest.mark.parametrize(
    ("mark", "seen", "expected"),
    [
        (None, record("RUNNING"), False),
        (RunMark(0, None), record("RUNNING"), False),
        (RunMark(0, 0), None, True),
        (RunMark(0, 0), record("RUNNING"), True),
        (RunMark(0, 3), record("PENDING"), True),
        (RunMark(0, 0), record("COMPLETED"), False),  # the look shows the end already
        (RunMark(0, 0), record("PENDING", restarts=1), False),  # requeued since: old run
        (RunMark(2, 0), record("RUNNING", restarts=1), True),
    ],
)
def test_ended_since(mark: RunMark | None, seen: JobRecord | None, expected: bool) -> None:
    assert ended_since(mark, seen) is expected


# -- exact_exit ----------------------------------------------------------------------------


def test_exact_exit_restores_bit_7_from_the_status_file() -> None:
    sacct = record("FAILED", exit_code=72)  # sacct's text for 'exit 200'
    assert exact_exit(sacct, RunMark(0, 200)) == record("FAILED", exit_code=200)


@pytest.mark.parametrize(
    ("seen", "mark"),
    [
        (record("FAILED", exit_code=3), RunMark(0, 4)),  # low bits differ: another run
        (record("FAILED", exit_code=72, restarts=1), RunMark(0, 200)),  # an older run's mark
        (record("FAILED", exit_code=0, signal=9), RunMark(0, 0)),  # killed: keep the signal
        (record("FAILED", exit_code=72), RunMark(0, None)),
        (record("FAILED", exit_code=72), None),
    ],
)
def test_exact_exit_keeps_the_record_otherwise(seen: JobRecord, mark: RunMark | None) -> None:
    assert exact_exit(seen, mark) is seen


def test_exact_exit_of_nothing_is_nothing() -> None:
    assert exact_exit(None, RunMark(0, 0)) is None


# -- wants_look ----------------------------------------------------------------------------


def _wants(
    view: QueueView,
    marks: dict[str, RunMark | None],
    *,
    ended: set[str] | None = None,
    accounting: dict[str, JobRecord] | None = None,
    now: float = 10.0,
    refs: list[AttemptRef] | None = None,
) -> bool:
    return wants_look(
        view, refs or [ref()], marks, ended or set(), accounting or {}, now, INTERVAL_S
    )


def test_nothing_new_wants_no_look() -> None:
    view = QueueView(records={"7": record("RUNNING")})
    assert not _wants(view, {"t7": RunMark(0, None)})
    assert not _wants(view, {})
    assert not _wants(view, {"t7": RunMark(0, None)}, refs=[ref(None)])


def test_a_start_of_a_job_last_seen_pending_wants_a_look() -> None:
    view = QueueView(records={"7": record("PENDING")})
    assert _wants(view, {"t7": RunMark(0, None)})


def test_a_start_of_a_job_submitted_after_the_look_wants_one() -> None:
    view = QueueView()
    view.submitted(["7"])
    assert _wants(view, {"t7": RunMark(0, None)})


def test_a_start_of_a_job_gone_from_the_queue_wants_none() -> None:
    assert not _wants(QueueView(), {"t7": RunMark(0, None)})


def test_events_respect_the_event_interval() -> None:
    view = QueueView(records={"7": record("PENDING")}, event_look_at=8.0)
    assert not _wants(view, {"t7": RunMark(0, None)}, now=8.0 + EVENT_INTERVAL_S - 1)
    assert _wants(view, {"t7": RunMark(0, None)}, now=8.0 + EVENT_INTERVAL_S)


def test_starts_bring_a_look_forward_only_start_interval_after_the_last_look() -> None:
    # A busy queue starts jobs every second: looking at each start would ask slurmctld
    # every EVENT_INTERVAL_S; a start waits for START_INTERVAL_S since the last look.
    last = 100.0
    view = QueueView(records={"7": record("PENDING")}, looked_at=last)
    started: dict[str, RunMark | None] = {"t7": RunMark(0, None)}
    assert not _wants(view, started, now=last + EVENT_INTERVAL_S)
    assert not _wants(view, started, now=last + START_INTERVAL_S - 0.1)
    assert _wants(view, started, now=last + START_INTERVAL_S)


def test_an_end_that_needs_slurmctld_is_not_held_back_by_the_start_interval() -> None:
    last = 100.0
    view = QueueView(records={"7": record("RUNNING", requeue=True)}, looked_at=last)
    assert _wants(view, {"t7": RunMark(0, 0)}, ended={"7"}, now=last + EVENT_INTERVAL_S)


def test_an_end_of_a_requeueable_job_wants_a_look() -> None:
    view = QueueView(records={"7": record("RUNNING", requeue=True)})
    assert _wants(view, {"t7": RunMark(0, 0)}, ended={"7"})
    unknown = QueueView(records={"7": record("RUNNING", requeue=None)})
    assert _wants(unknown, {"t7": RunMark(0, 0)}, ended={"7"})


def test_an_end_settled_by_accounting_wants_no_look() -> None:
    view = QueueView(records={"7": record("RUNNING")}, ended_seen={"7": 0.0})
    accounting = {"7": record("COMPLETED")}
    assert not _wants(view, {"t7": RunMark(0, 0)}, ended={"7"}, accounting=accounting)


def test_an_end_accounting_does_not_settle_wants_a_look_after_settle_s() -> None:
    view = QueueView(records={"7": record("RUNNING")}, ended_seen={"7": 10.0})
    marks: dict[str, RunMark | None] = {"t7": RunMark(0, 0)}
    running = {"7": record("RUNNING")}
    assert not _wants(view, marks, ended={"7"}, accounting=running, now=10.0 + SETTLE_S / 2)
    assert _wants(view, marks, ended={"7"}, accounting=running, now=10.0 + SETTLE_S)
