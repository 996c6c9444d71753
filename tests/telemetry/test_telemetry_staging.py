"""Staging telemetry from real stages on the local executor, through the one event fold:
bytes and seconds per storage endpoint, stage duration and throughput per job, and
checksum mismatches by where they were caught; the mismatch alert against real promtool."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass, JobState
from hpcbridge.telemetry import StoreCollector, data_integrity_rules

MISMATCHES = "hpcbridge_checksum_mismatches_total"
ALERT = "HpcbridgeChecksumMismatch"


def _registry(client: Client) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StoreCollector(client.store))
    return registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"project": "default", **labels})


def test_stage_bytes_duration_and_throughput_per_job_and_endpoint(
    settings: Settings, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"x" * 300_000)
    spec = make_spec(
        command=["cp", "in.bin", "out.bin"],
        stage_in=[{"source": str(source), "dest": "in.bin"}],
        stage_out=[{"source": "out.bin", "dest": str(tmp_path / "results" / "out.bin")}],
    )
    client = Client(settings)
    try:
        job = client.submit(spec)
        (done,) = client.wait([job.job_id], timeout_s=60)
        assert done.state is JobState.SUCCEEDED, done.reason
        registry = _registry(client)
        base = {"workload_class": "batch"}
        for direction in ("stage_in", "stage_out"):
            where = {**base, "direction": direction, "endpoint": "file"}
            assert _value(registry, "hpcbridge_staging_bytes_total", **where) == 300_000
            seconds = _value(registry, "hpcbridge_staging_transfer_seconds_total", **where)
            assert seconds is not None and seconds > 0
            count = _value(
                registry, "hpcbridge_staging_duration_seconds_count", **base, direction=direction
            )
            assert count == 1
            speed = _value(
                registry,
                "hpcbridge_storage_throughput_bytes_per_second_count",
                **base,
                operation=direction,
            )
            assert speed == 1
        for check in ("stage_in", "stage_out", "node"):  # exported at 0 before the first
            assert _value(registry, MISMATCHES, **base, check=check) == 0
    finally:
        client.close()


def test_checksum_mismatches_are_counted_where_they_were_caught(
    settings: Settings, tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("original\n")
    client = Client(settings)
    try:
        wrong = make_spec(
            command=["true"],
            stage_in=[{"source": str(source), "dest": "in.txt", "checksum": "sha256:" + "0" * 64}],
        )
        first = client.submit(wrong)
        changed = client.submit(
            make_spec(command=["true"], stage_in=[{"source": str(source), "dest": "in.txt"}])
        )
        manifest = settings.home / "data" / changed.job_id / ".hpcbridge" / "inputs.json"
        client.reconciler.cycle()  # accepted -> staging_in
        client.reconciler.cycle()  # the stages start in workers
        deadline = time.monotonic() + 30
        while not manifest.exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (manifest.parent.parent / "in.txt").write_text("tampered\n")  # after staging
        for done in client.wait([first.job_id, changed.job_id], timeout_s=60):
            assert done.failure_class is FailureClass.CHECKSUM_MISMATCH, done.reason
        registry = _registry(client)
        counted = {
            check: _value(registry, MISMATCHES, workload_class="batch", check=check)
            for check in ("stage_in", "stage_out", "node")
        }
        assert counted == {"stage_in": 1, "stage_out": 0, "node": 1}
    finally:
        client.close()


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("needs promtool: Debian's 'prometheus' package (scripts/test installs it)")
    return path


def _promtool(promtool: str, *args: str, cwd: Path) -> None:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_checksum_alert_fires_on_one_mismatch_and_not_without(
    promtool: str, tmp_path: Path
) -> None:
    (tmp_path / "rules.yml").write_text(
        yaml.safe_dump({"groups": [data_integrity_rules("https://runbooks.example")]})
    )
    _promtool(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    labels = 'project="p",workload_class="batch"'
    expected = {
        "severity": "ticket",
        "project": "p",
        "workload_class": "batch",
        "check": "node",
    }
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{MISMATCHES}{{{labels},check="node"}}', "values": "0 0 0 1 1 1"},
                    {"series": f'{MISMATCHES}{{{labels},check="stage_in"}}', "values": "0x50"},
                ],
                "alert_rule_test": [
                    {"eval_time": "2m", "alertname": ALERT, "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": ALERT,
                        "exp_alerts": [
                            {
                                "exp_labels": expected,
                                "exp_annotations": {
                                    "summary": "Checksum mismatch in p/batch (check node)",
                                    "description": data_integrity_rules()["rules"][0][
                                        "annotations"
                                    ]["description"].replace("{{ $value | humanize }}", "1"),
                                    "runbook_url": (
                                        "https://runbooks.example/silent-data-corruption.md"
                                    ),
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "50m",
                        "alertname": ALERT,
                        "exp_alerts": [],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    _promtool(promtool, "test", "rules", "test.yml", cwd=tmp_path)
