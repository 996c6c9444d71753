"""Staged data in an attempt's charge: storage of the staged inputs for the attempt's run
(GB-month) and egress of the inputs of a burst. Priced from bytes the reconciler notes with
the finished attempt; a real local job with a real stage-in is charged its storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.cost import AttemptCost, CardBook, load_cards, price
from hpcbridge.reconciler._staged_cost import staged_usage
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store import Attempt, Event, Job, JobId

CARD = (
    "cluster: local\nversion: v1\neffective_from: 2020-01-01\ncurrency: EUR\n"
    "partitions: {'*': {core_hour: 0.0}}\nstorage_gb_month: 30.0\negress_gb: 0.5\n"
)
MONTH_S = 30 * 86400.0
START = 1_780_000_000.0


@pytest.fixture
def book(tmp_path: Path) -> CardBook:
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "local.yaml").write_text(CARD)
    return load_cards(tmp_path / "cards")


def _attempt(details: dict[str, object], run_s: float) -> tuple[Job, Attempt]:
    job = Job(JobId("j"), "j", "p", "batch", "local", {}, JobState.SUCCEEDED, 1, 0.0, 0.0)
    attempt = Attempt(
        job_id=JobId("j"),
        number=1,
        token="t",
        backend="local",
        state=AttemptState.SUCCEEDED,
        created_at=START,
        started_at=START,
        ended_at=START + run_s,
        details=details,
    )
    return job, attempt


def test_storage_is_gb_months_of_the_run_and_egress_is_per_gb(book: CardBook) -> None:
    job, attempt = _attempt({"staged_bytes": 2_000_000_000, "egress_bytes": 4e9}, MONTH_S / 10)
    cost = price(job, attempt, book)
    # 2 GB kept for a tenth of a month at 30 a GB-month; 4 GB out at 0.5 a GB
    assert cost.items == {"storage": pytest.approx(6.0), "egress": pytest.approx(2.0)}
    assert cost.amount == pytest.approx(8.0)
    job, attempt = _attempt({"staged_bytes": True, "egress_bytes": -5}, MONTH_S)
    assert price(job, attempt, book).amount == 0.0  # not byte counts: nothing charged


def _spec(**burst: object) -> JobSpec:
    document = {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "n", "command": ["x"]}
    return load_spec_document(document | ({"burst": burst} if burst else {}))


def test_staged_bytes_come_from_the_latest_stage_in() -> None:
    def moved(source: JobState, target: JobState, data: dict[str, object]) -> Event:
        return Event(1, JobId("j"), 0.0, "transition", None, source, target, None, data)

    events = [
        moved(JobState.STAGING_IN, JobState.QUEUED, {"bytes_total": 10}),
        moved(JobState.RUNNING, JobState.RETRY_WAIT, {}),
        moved(JobState.STAGING_IN, JobState.HELD, {"bytes_total": 30}),
    ]
    assert staged_usage(_spec(), events) == {"staged_bytes": 30}
    burst = _spec(eligible=True, decided="burst")
    assert staged_usage(burst, events) == {"staged_bytes": 30, "egress_bytes": 30}
    assert staged_usage(_spec(), events[1:2]) == {}


def test_a_local_job_is_charged_the_storage_of_its_staged_inputs(tmp_path: Path) -> None:
    cards = tmp_path / "home" / "rate_cards"
    cards.mkdir(parents=True)
    (cards / "local.yaml").write_text(CARD)
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 3_000_000)
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "staged",
            "command": ["sleep", "1"],
            "stage_in": [{"source": str(source), "dest": "input.bin"}],
        }
    )
    client = Client(Settings(home=tmp_path / "home", database_url="memory://", local_cpus=2))
    try:
        job = client.submit(spec)
        (done,) = client.wait([job.job_id], timeout_s=60)
        assert done.state is JobState.SUCCEEDED, done.reason
        (attempt,) = client.attempts(job.job_id)
        assert attempt.details["staged_bytes"] == 3_000_000
        cost = AttemptCost.from_details(attempt.details["cost"])
        assert cost is not None and "egress" not in cost.items
        run_s = (attempt.ended_at or 0.0) - (attempt.started_at or 0.0)
        expected = 0.003 * run_s / MONTH_S * 30.0  # charges keep 9 decimals
        assert cost.items["storage"] == pytest.approx(expected, abs=1e-9) and expected > 0
    finally:
        client.close()
