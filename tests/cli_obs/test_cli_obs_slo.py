"""``hpcbridge slo report|rules|validate``."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from hpcbridge.client import Client
from hpcbridge.slo import default_slos, generate_rules, rules_to_yaml
from hpcbridge.telemetry import data_integrity_rules
from tests.cli_obs.conftest import Cli
from tests.telemetry._sim import Sim

REPO = Path(__file__).resolve().parents[2]


def test_rules_are_the_generated_ones(cli: Cli) -> None:
    result = cli("slo", "rules")
    assert result.code == 0
    expected = generate_rules(default_slos())
    expected["groups"].append(data_integrity_rules())  # the checksum mismatch alert
    assert result.out == rules_to_yaml(expected)


@pytest.mark.prometheus
def test_rules_file_passes_promtool(cli: Cli, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found; install Debian's 'prometheus' package")
    for source in (None, REPO / "examples" / "slo.yaml"):
        out = tmp_path / "rules.yml"
        args = ["slo", "rules", "--out", str(out)]
        result = cli(*args, *(["--file", str(source)] if source else []))
        assert result.code == 0, result.err
        checked = subprocess.run(
            [promtool, "check", "rules", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout


def test_validate_good_and_bad_files(cli: Cli, tmp_path: Path) -> None:
    good = cli("slo", "validate", str(REPO / "examples" / "slo.yaml"))
    assert good.code == 0 and "valid" in good.out
    bad = tmp_path / "bad.yaml"
    document = yaml.safe_load((REPO / "examples" / "slo.yaml").read_text())
    document["slos"][0]["objective"] = 1.5
    document["slos"][0]["sli"]["ratio"]["bad"]["where"]["failure_class"] = ["crashed"]
    bad.write_text(yaml.safe_dump(document))
    result = cli("slo", "validate", str(bad))
    assert result.code == 2
    assert "objective" in result.err and "crashed" in result.err
    missing = cli("slo", "validate", str(tmp_path / "nope.yaml"))
    assert missing.code == 2 and "no such file" in missing.err


def test_report_from_the_store(cli: Cli, client: Client) -> None:
    sim = Sim(client.store, now=time.time() - 1800)
    with client.store.batch():
        for _ in range(20):
            sim.job(["succeeded"], queue_s=5, run_s=30)
        for _ in range(5):
            sim.job(["lost"], queue_s=5, run_s=30, workload_class="critical")
    result = cli("slo", "report", "--json")
    assert result.code == 0, result.err
    report = {s["name"]: s for s in result.json()["slos"]}
    platform = report["platform-success"]
    assert (platform["events"], platform["bad"]) == (25, 5)
    assert {a["severity"] for a in platform["alerts"]} >= {"page"}
    assert report["job-success-critical"]["events"] == 5
    table = cli("slo", "report")
    assert table.code == 0
    assert "platform-success" in table.out and "page" in table.out


def test_report_with_a_custom_file(cli: Cli) -> None:
    result = cli("slo", "report", "--json", "--file", str(REPO / "examples" / "slo.yaml"))
    assert result.code == 0, result.err
    names = [s["name"] for s in result.json()["slos"]]
    assert "platform-success" in names and all(s["events"] == 0 for s in result.json()["slos"])
