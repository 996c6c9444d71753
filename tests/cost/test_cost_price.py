"""Rate cards and the charge of one attempt (pure: no store, no scheduler)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hpcbridge.cost import AttemptCost, load_cards, price
from hpcbridge.errors import ConfigError
from hpcbridge.states import AttemptState, FailureClass, JobState
from hpcbridge.store import Attempt, Job, JobId

JAN = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
FEB = datetime(2026, 2, 1, tzinfo=UTC).timestamp()


def _cards(tmp_path: Path) -> Path:
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "hpc1-2026-01.yaml").write_text(
        "cluster: hpc1\nversion: '2026-01'\neffective_from: 2026-01-01\ncurrency: EUR\n"
        "partitions:\n"
        "  '*': {core_hour: 0.10, mem_gb_hour: 0.01, gpu_hour: {'*': 1.0, fake: 2.0}}\n"
        "  spot: {core_hour: 0.02}\n"
        "licence_hour: {fluent: 3.0}\n"
    )
    (cards / "hpc1-2026-02.yaml").write_text(
        "cluster: hpc1\nversion: '2026-02'\neffective_from: 2026-02-01\n"
        "partitions: {'*': {core_hour: 0.20}}\n"
    )
    (cards / "local.yaml").write_text(
        "cluster: local\nversion: v1\neffective_from: 2020-01-01\n"
        "partitions: {'*': {core_hour: 0.5}}\n"
    )
    return cards


def _job(**spec: object) -> Job:
    return Job(
        job_id=JobId("jabc"),
        name="x",
        project="p",
        workload_class="batch",
        backend="slurm",
        spec={"resources": spec},
        state=JobState.SUCCEEDED,
        version=1,
        created_at=JAN,
        updated_at=JAN,
        cluster="hpc1",
    )


def _slurm_attempt(
    start: float, partition: str = "batch", state: AttemptState = AttemptState.SUCCEEDED
) -> Attempt:
    return Attempt(
        job_id=JobId("jabc"),
        number=1,
        token="t",
        backend="slurm",
        state=state,
        created_at=start,
        started_at=start,
        ended_at=start + 7200,
        failure_class=None if state is AttemptState.SUCCEEDED else FailureClass.PREEMPTED,
        details={
            "slurm": {
                "cluster": "hpc1",
                "partition": partition,
                "nodes": ["n1"],
                "elapsed_s": 3600,
                "alloc_tres": {"cpu": "2", "mem": "2G", "gres/gpu": "1", "gres/gpu:fake": "1"},
                "cpus": 2,
                "gpus": 1,
                "licences": {"fluent": 1},
            }
        },
    )


def test_slurm_attempt_is_charged_allocated_tres_times_elapsed(tmp_path: Path) -> None:
    book = load_cards(_cards(tmp_path))
    cost = price(_job(), _slurm_attempt(JAN + 10), book)
    # sacct's elapsed (1 h), not the attempt's wall times (2 h)
    assert cost.core_hours == 2.0
    assert cost.gpu_hours == 1.0
    assert cost.mem_gb_hours == 2.0
    assert cost.items == {"cores": 0.2, "memory": 0.02, "gpus": 2.0, "licence:fluent": 3.0}
    assert cost.amount == pytest.approx(5.22)
    assert (cost.card, cost.currency, cost.waste) == ("hpc1/2026-01", "EUR", False)
    assert AttemptCost.from_details(cost.as_details()) == cost
    assert set(cost.as_details()) == {f.name for f in dataclasses.fields(AttemptCost)}


def test_the_card_in_force_when_the_attempt_started_applies(tmp_path: Path) -> None:
    book = load_cards(_cards(tmp_path))
    january = price(_job(), _slurm_attempt(FEB - 60), book)
    february = price(_job(), _slurm_attempt(FEB + 60), book)
    assert january.card == "hpc1/2026-01"
    assert february.card == "hpc1/2026-02"
    assert february.items == {"cores": 0.4}
    assert price(_job(), _slurm_attempt(JAN - 60), book).card is None


def test_partition_rates_fall_back_to_the_default_and_failures_are_waste(tmp_path: Path) -> None:
    book = load_cards(_cards(tmp_path))
    cost = price(_job(), _slurm_attempt(JAN + 10, "spot", AttemptState.FAILED), book)
    assert cost.items["cores"] == pytest.approx(0.04)
    assert cost.items["memory"] == pytest.approx(0.02)
    assert cost.waste


def test_local_attempt_is_charged_its_slots_times_its_run(tmp_path: Path) -> None:
    book = load_cards(_cards(tmp_path))
    attempt = Attempt(
        job_id=JobId("jabc"),
        number=1,
        token="t",
        backend="local",
        state=AttemptState.SUCCEEDED,
        created_at=JAN,
        started_at=JAN,
        ended_at=JAN + 1800,
        details={"cpus": 4, "mem_mb": 0, "gpus": 0},
    )
    cost = price(_job(), attempt, book)
    assert (cost.core_hours, cost.amount, cost.card) == (2.0, 1.0, "local/v1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cluster: a\nversion: v\neffective_from: 2026-01-01\n", "partitions: required"),
        (
            "cluster: a\nversion: v\neffective_from: 2026-01-01\npartitions: {'*': {cores: 1}}\n",
            "partitions.*.cores: unknown field",
        ),
        (
            "cluster: a\nversion: v\neffective_from: soon\npartitions: {'*': {core_hour: 1}}\n",
            "effective_from",
        ),
        ("cluster: [\n", "cannot read it as YAML"),
    ],
)
def test_an_invalid_card_names_its_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml") as raised:
        load_cards(tmp_path)
    assert message in str(raised.value)


def test_two_cards_with_one_version_are_refused(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(
            f"cluster: c\nversion: v1\neffective_from: 2026-0{1 + (name == 'b.yaml')}-01\n"
            "partitions: {'*': {core_hour: 1}}\n"
        )
    with pytest.raises(ConfigError, match="both give cluster 'c' version 'v1'"):
        load_cards(tmp_path)
