"""Runbooks shipped in the package and the runbook_url_base setting, through the installed
``hpcbridge``: ``runbook``, ``slo rules``, ``dashboards export`` and ``why`` all link
``<base>/<name>.md``."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hpcbridge.runbooks import read_runbook, runbook_names
from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error

REPO = Path(__file__).resolve().parents[2]
PACKAGE_RUNBOOKS = REPO / "src" / "hpcbridge" / "runbooks"
BASE = "https://wiki.example.org/hpc/runbooks"
WITH_BASE = {"HPCBRIDGE_RUNBOOK_URL_BASE": BASE + "/"}


def test_one_copy_docs_link_to_the_package() -> None:
    assert (REPO / "docs" / "runbooks").resolve() == PACKAGE_RUNBOOKS
    names = sorted(path.stem for path in PACKAGE_RUNBOOKS.glob("*.md"))
    assert sorted(runbook_names()) == names
    assert "node-failure" in names and "triage" in names


def test_runbook_prints_the_shipped_text(hpcbridge: RunHpcbridge) -> None:
    result = hpcbridge("runbook", "node-failure")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (PACKAGE_RUNBOOKS / "node-failure.md").read_text()
    assert result.stdout == read_runbook("node-failure")


def test_runbook_lists_where_they_are_published(hpcbridge: RunHpcbridge) -> None:
    default = hpcbridge("runbook").stdout.splitlines()
    assert "triage\tdocs/runbooks/triage.md" in default
    listed = hpcbridge("runbook", env=WITH_BASE).stdout.splitlines()
    assert f"triage\t{BASE}/triage.md" in listed
    assert len(listed) == len(runbook_names())


def test_unknown_runbook_is_a_usage_error(hpcbridge: RunHpcbridge) -> None:
    line = assert_one_line_usage_error(hpcbridge("runbook", "node-failur"))
    assert "no runbook 'node-failur'; one of: README, fabric-degradation" in line


def test_rules_link_under_the_base(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    user.write_text(f'runbook_url_base = "{BASE}"\n')
    result = hpcbridge("slo", "rules", env={"HPCBRIDGE_CONFIG": str(user)})
    assert result.returncode == 0, result.stderr
    urls = {
        rule["annotations"]["runbook_url"]
        for group in yaml.safe_load(result.stdout)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert urls
    for url in urls:
        assert url.startswith(BASE + "/") and url.endswith(".md"), url
        assert url.removeprefix(BASE + "/").removesuffix(".md") in runbook_names()


def test_dashboards_link_under_the_base(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    result = hpcbridge("dashboards", "export", str(tmp_path / "out"), env=WITH_BASE)
    assert result.returncode == 0, result.stderr
    oncall = (tmp_path / "out" / "hpcbridge-oncall.json").read_text()
    assert f"({BASE}/triage.md)" in oncall and f"({BASE}/README.md)" in oncall


def test_why_links_under_the_base(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    spec = tmp_path / "fails.yaml"
    spec.write_text(
        "apiVersion: hpcbridge/v1\nkind: Job\nname: fails\ncommand: [sh, -c, 'exit 3']\n"
    )
    ran = hpcbridge("run", str(spec), "--json", env=WITH_BASE)
    assert ran.returncode == 1, ran.stderr
    job_id = json.loads(ran.stdout)["job"]["job_id"]
    why = hpcbridge("why", job_id, "--json", env=WITH_BASE)
    assert why.returncode == 0, why.stderr
    assert json.loads(why.stdout)["runbook"] == f"{BASE}/triage.md"
    text = hpcbridge("why", job_id, env=WITH_BASE)
    assert f"Runbook: {BASE}/triage.md (or 'hpcbridge runbook triage')" in text.stdout
