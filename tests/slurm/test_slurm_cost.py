"""Cost on the real Slurm cluster: account and QOS checked against slurmdbd and rendered
through both transports, and the chargeback report's core-hours equal sacct's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.backends import Phase
from hpcbridge.backends.slurm import Clusters, SlurmBackend
from hpcbridge.cost import CardBook, load_cards, summarize
from hpcbridge.reconciler import Policy, Reconciler

from ._helpers import SlurmHarness, cluster_config, make_settings, run_slurm, scancel
from ._rig import Rig, slurm_spec
from .conftest import SlurmCluster

pytestmark = pytest.mark.slurm

CARD = (
    "cluster: test-cli\nversion: v1\neffective_from: 2020-01-01\ncurrency: EUR\n"
    "partitions: {'*': {core_hour: 1.0, mem_gb_hour: 0.01}}\n"
)


def _sacct(cluster: SlurmCluster, native_ids: list[str], fields: str) -> list[list[str]]:
    """sacct's rows, once slurmdbd has settled them (it may show the QOS as Unknown for a
    moment after a job ended)."""
    deadline = time.monotonic() + 15
    while True:
        out = run_slurm(
            cluster, "sacct", "-n", "-P", "-X", "-j", ",".join(native_ids), f"--format={fields}"
        )
        rows = [line.split("|") for line in out.splitlines() if line.strip()]
        if not any("Unknown" in row for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


@pytest.fixture
def costed_rig(tmp_path: Path, slurm_cluster: SlurmCluster) -> Iterator[tuple[Rig, CardBook]]:
    # usage_wait_s: the attempt ends once sacct has its usage, as in production
    config = cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs", usage_wait_s=30.0)
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=Clusters((config,)))
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "test-cli.yaml").write_text(CARD)
    book = load_cards(cards)
    rig = Rig(backend, tmp_path)
    rig.reconciler = Reconciler(
        rig.store,
        {"slurm": backend},
        policy=Policy(lost_grace_s=60.0),
        checkpoints_dir=tmp_path / "checkpoints",
        rate_cards=book,
    )
    try:
        yield rig, book
    finally:
        scancel(slurm_cluster, rig.native_ids())
        backend.close()


def test_account_and_qos_are_checked_against_the_associations(
    costed_rig: tuple[Rig, CardBook], slurm_cluster: SlurmCluster
) -> None:
    backend = costed_rig[0].backend
    assert backend.check(slurm_spec(account="root", qos="normal")) == []
    (problem,) = backend.check(slurm_spec(account="no-such-account"))
    assert "may not use account 'no-such-account'" in problem and "use one of root" in problem
    (problem,) = backend.check(slurm_spec(account="root", qos="no-such-qos"))
    assert "may not use QOS 'no-such-qos'" in problem and "use one of normal" in problem


def test_report_core_hours_equal_sacct(
    costed_rig: tuple[Rig, CardBook], slurm_cluster: SlurmCluster
) -> None:
    rig, book = costed_rig
    started = time.time()
    jobs = [
        rig.submit(
            slurm_spec(
                name="two",
                command=["sleep", "3"],
                account="root",
                qos="normal",
                resources={"cpus_per_task": 2},
            )
        ),
        rig.submit(slurm_spec(name="one", command=["sleep", "2"], account="root")),
        rig.submit(slurm_spec(name="fails", command=["sh", "-c", "sleep 2; exit 3"])),
    ]
    for job_id in jobs:
        rig.wait_done(job_id, timeout_s=120)
    native = rig.native_ids()
    assert len(native) == 3
    ended = rig.store.attempts_ended(started - 60, time.time() + 60)
    report = summarize(ended, book, by="project", since=started - 60, until=time.time())

    rows = _sacct(slurm_cluster, native, "JobID,CPUTimeRAW,Account,QOS")
    sacct_core_hours = sum(int(row[1]) for row in rows) / 3600
    assert sacct_core_hours > 0
    assert report.total.core_hours == pytest.approx(sacct_core_hours, rel=1e-6)
    assert report.total.attempts == 3 and report.total.results == 2
    assert report.total.waste > 0 and report.cards == ("test-cli/v1",)
    # core-hours at 1.0 plus memory: the card in force prices what sacct accounted
    assert report.total.spend >= report.total.core_hours
    by_id = {row[0]: row for row in rows}
    two = next(a for j, a in ended if j.name == "two")
    assert by_id[str(two.native_id)][2:] == ["root", "normal"]  # sbatch --account --qos


def test_rest_transport_sends_account_and_qos(tmp_path: Path, slurm_cluster: SlurmCluster) -> None:
    harness = SlurmHarness(tmp_path, slurm_cluster, "rest")
    try:
        ref = harness.launch(harness.spec(account="root", qos="normal"))
        seen = harness.wait(ref, {Phase.SUCCEEDED, Phase.FAILED})
        assert seen.phase is Phase.SUCCEEDED
        # slurmdbd may show the QOS as Unknown for a moment after the job ended
        deadline = time.monotonic() + 15
        while True:
            ((_, account, qos),) = _sacct(slurm_cluster, [str(ref.native_id)], "JobID,Account,QOS")
            if qos != "Unknown" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (account, qos) == ("root", "normal")
    finally:
        harness.close()
