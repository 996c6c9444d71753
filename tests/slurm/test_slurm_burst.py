"""Burst to cloud on the real cluster: with the batch nodes full (a long job holding all
three), a burst-eligible job's on-prem start estimate (``sbatch --test-only``) is past its
threshold, so the policy sends it to the ``cloud`` partition, whose powered-down node
powers up and runs it; an exhausted burst budget and a residency tag keep it on-prem, each
with its reason in the ``burst_decided`` event and in ``why``; ``hpcbridge plan`` shows
both options and the pick without storing anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.cli._setup import local_service
from hpcbridge.client import Client
from hpcbridge.spec import JobSpec, load_spec_document

from ._helpers import make_settings, run_slurm, scancel
from .conftest import SlurmCluster

pytestmark = pytest.mark.slurm

CARD = (
    "cluster: test-cli\nversion: v1\neffective_from: 2020-01-01\ncurrency: EUR\n"
    "partitions: {'*': {core_hour: 0.05}, cloud: {core_hour: 0.40}}\negress_gb: 0.09\n"
)


@pytest.fixture
def client(tmp_path: Path, slurm_cluster: SlurmCluster) -> Iterator[Client]:
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "clusters:\n  test-cli:\n    default: true\n"
        f"    slurm_conf: {slurm_cluster.slurm_conf}\n"
        f"    default_partition: {slurm_cluster.default_partition}\n"
        f"    log_dir: {tmp_path / 'logs'}\n    queue_interval_s: 0.5\n"
    )
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "test-cli.yaml").write_text(CARD)
    settings = make_settings(
        tmp_path / "home",
        clusters_file=clusters,
        rate_cards=cards,
        budgets_file=tmp_path / "budgets.yaml",
    )
    found = Client(settings)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def full_batch(slurm_cluster: SlurmCluster) -> Iterator[str]:
    """A job holding every batch node for 30 minutes (by its time limit), cancelled after."""
    native_id = run_slurm(
        slurm_cluster,
        "sbatch",
        "--parsable",
        "-p",
        "batch",
        "-N3",
        "--exclusive",
        "-t",
        "30",
        "-o",
        "/dev/null",
        "--wrap",
        "sleep 1800",
    ).strip()
    deadline = time.monotonic() + 60
    while run_slurm(slurm_cluster, "squeue", "-h", "-j", native_id, "-o", "%T").strip() != (
        "RUNNING"
    ):
        assert time.monotonic() < deadline, "the filler job never started"
        time.sleep(0.5)
    try:
        yield native_id
    finally:
        scancel(slurm_cluster, [native_id])


def _spec(name: str, **extra: object) -> JobSpec:
    return load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": name,
            "project": "physics",
            "backend": "slurm",
            "command": ["hostname"],
            "resources": {"walltime": "10m"},
            "burst": {"eligible": True, "wait_threshold": "2m"},
        }
        | extra
    )


def _decision(client: Client, job_id: str) -> tuple[str, dict[str, object]]:
    (event,) = [e for e in client.events(job_id) if e.kind == "burst_decided"]
    return event.reason or "", dict(event.data)


def test_a_long_on_prem_wait_bursts_and_a_cloud_node_powers_up_and_runs_it(
    client: Client, full_batch: str, slurm_cluster: SlurmCluster
) -> None:
    _powered_down(slurm_cluster)  # so that running there proves a node powered up
    job = client.submit(_spec("bursts"))
    reason, data = _decision(client, job.job_id)
    assert data["burst"] is True and data["partition"] == "cloud", reason
    assert isinstance(data["onprem_wait_s"], float) and data["onprem_wait_s"] > 120
    assert data["burst_cost"] > data["onprem_cost"] > 0  # type: ignore[operator]
    assert "(node power-up)" in reason and "EUR" in reason
    assert job.spec["burst"]["decided"] == "burst"

    (done,) = client.wait([job.job_id], timeout_s=240)
    assert done.state.value == "succeeded", done.reason
    (attempt,) = client.attempts(job.job_id)
    assert attempt.details["slurm"]["partition"] == "cloud"
    (node,) = attempt.details["slurm"]["nodes"]
    assert node in ("c1", "c2")
    out = run_slurm(
        slurm_cluster, "sacct", "-n", "-X", "-j", str(attempt.native_id), "-o", "NodeList"
    )
    assert out.strip() == node  # the scheduler ran it on the powered-up cloud node
    why = _why(client, job.job_id)
    assert any("sent it to partition 'cloud' (burst)" in action for action in why)


def test_an_exhausted_burst_budget_keeps_it_on_prem(
    client: Client, full_batch: str, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    (tmp_path / "budgets.yaml").write_text(
        "burst_budgets:\n"
        "  - {name: physics-burst, project: physics, period: month, hard: 0,"
        " owner: finops@example.org}\n"
    )
    job = client.submit(_spec("no-money"))
    reason, data = _decision(client, job.job_id)
    assert data["burst"] is False
    assert "burst budget 'physics-burst' is exhausted: EUR 0.00 of EUR 0.00 used this month" in (
        reason
    )
    assert "ask finops@example.org to raise it" in reason
    assert job.spec["burst"]["decided"] == "onprem"
    _submitted_to(client, job.job_id, slurm_cluster, "batch")


def test_a_residency_tag_keeps_it_on_prem(
    client: Client, full_batch: str, slurm_cluster: SlurmCluster
) -> None:
    job = client.submit(_spec("stays", tags={"residency": "onprem"}))
    reason, data = _decision(client, job.job_id)
    assert data["burst"] is False
    assert "its data residency 'onprem' keeps it on-prem" in reason
    _submitted_to(client, job.job_id, slurm_cluster, "batch")
    assert any("kept it on-prem (no burst)" in action for action in _why(client, job.job_id))


def _submitted_to(client: Client, job_id: str, cluster: SlurmCluster, partition: str) -> None:
    """The job reaches the scheduler in ``partition`` (where it waits behind the filler)."""
    deadline = time.monotonic() + 60
    while True:
        client.reconcile_once()
        attempts = client.attempts(job_id)
        if attempts and attempts[0].native_id:
            break
        assert time.monotonic() < deadline, "never submitted"
        time.sleep(0.3)
    native_id = str(attempts[0].native_id)
    try:
        out = run_slurm(cluster, "squeue", "-h", "-j", native_id, "-o", "%P %T")
        assert out.split() == [partition, "PENDING"]
    finally:
        scancel(cluster, [native_id])


def _why(client: Client, job_id: str) -> list[str]:
    service, me = local_service(client)
    return service.why(me, job_id).actions


def _powered_down(cluster: SlurmCluster) -> None:
    """Wait until both cloud nodes are powered down (``idle~``; SuspendTime is 30 s)."""
    deadline = time.monotonic() + 150
    while True:
        states = run_slurm(cluster, "sinfo", "-h", "-N", "-p", "cloud", "-o", "%T").split()
        if states and all(state.endswith("~") for state in states):
            return
        assert time.monotonic() < deadline, f"cloud nodes never powered down: {states}"
        time.sleep(1.0)


def test_plan_prints_both_options_and_the_pick(
    client: Client, full_batch: str, tmp_path: Path
) -> None:
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(
        "apiVersion: hpcbridge/v1\nkind: Job\nname: planned\nproject: physics\n"
        "backend: slurm\ncommand: [hostname]\nresources: {walltime: 10m, cpus_per_task: 2}\n"
        "burst: {eligible: true, wait_threshold: 2m}\n"
    )
    settings = client.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPCBRIDGE_", "SLURM_"))}
    env |= {
        "HPCBRIDGE_HOME": str(tmp_path / "plan-home"),
        "HPCBRIDGE_CLUSTERS_FILE": str(settings.clusters_file),
        "HPCBRIDGE_RATE_CARDS": str(settings.rate_cards),
        "COLUMNS": "250",
    }
    hpcbridge = str(Path(sys.executable).parent / "hpcbridge")

    def plan(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [hpcbridge, "plan", str(spec_file), *args]
        return subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=120
        )

    shown = plan()
    assert shown.returncode == 0, shown.stderr
    onprem, burst, pick = shown.stdout.splitlines()
    # 2 cores for 10 min: EUR 0.05 a core-hour on-prem, EUR 0.40 in the cloud
    assert onprem.startswith("on-prem: start in about ") and onprem.endswith(", cost EUR 0.02")
    assert burst == "burst: start in about 1 min (node power-up), cost EUR 0.13, egress 0.00 GB"
    assert pick.startswith("the policy would pick: burst to partition 'cloud' (on-prem start")
    as_json = plan("--json")
    data = json.loads(as_json.stdout)
    assert data["burst"] is True and data["onprem_wait_s"] > 120 and data["currency"] == "EUR"
    assert client.list_jobs() == []  # planning stores nothing

    spec_file.write_text(spec_file.read_text().replace("cpus_per_task: 2", "cpus_per_task: 99"))
    refused = plan()
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: ")
