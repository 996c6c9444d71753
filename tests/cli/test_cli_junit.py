"""``run --junit`` and ``wait --junit``: a JUnit XML report that validates against the JUnit
schema (tests/cli/data/junit-10.xsd), one test case per array task, failures with their
reason, class and output tail, cancelled jobs skipped."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
import yaml

from hpcbridge.cli._junit import Output, junit_report, read_tail
from hpcbridge.states import FailureClass, JobState
from hpcbridge.store import Job, JobId
from tests.cli._home import runner, spec
from tests.cli.conftest import assert_one_line_usage_error, installed_entry_point

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit-10.xsd")

SWEEP = """project: ci
array:
  params:
    x: [0, 1, 2, 3]
command:
  - python3
  - -c
  - "import sys; print('task {x} ok'); print('oops {x}', file=sys.stderr); sys.exit({x} % 2 * 3)"
"""


def test_a_sweep_with_failures_gives_one_case_per_task(tmp_path: Path) -> None:
    run = runner(tmp_path / "home", tmp_path)
    report = tmp_path / "report.xml"
    result = run("run", spec(tmp_path, "sweep", SWEEP), "--junit", str(report), timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)

    SCHEMA.validate(str(report))
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("sweep", "4", "2")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"sweep[{i}]" for i in range(4)]
    assert {c.get("classname") for c in cases} == {"ci.sweep"}
    for index, case in enumerate(cases):
        assert float(case.get("time", "-1")) >= 0
        assert f"task {index} ok" in case.findtext("system-out", "")
        assert f"oops {index}" in case.findtext("system-err", "")
        failure = case.find("failure")
        if index % 2:
            assert failure is not None
            assert failure.get("type") == "app_error"
            assert "exited with code 3" in failure.get("message", "")
        else:
            assert failure is None


def test_wait_writes_the_report_of_jobs_submitted_earlier(tmp_path: Path) -> None:
    run = runner(tmp_path / "home", tmp_path)
    job_id = run("submit", spec(tmp_path, "ok", "project: ci\ncommand: ['true']\n")).stdout.strip()
    report = tmp_path / "wait.xml"
    result = run("wait", job_id, "--junit", str(report))
    assert result.returncode == 0, result.stderr
    SCHEMA.validate(str(report))
    (case,) = ET.parse(report).getroot().iter("testcase")
    assert (case.get("name"), case.get("classname"), list(case)) == ("ok", "ci.ok", [])


def test_a_report_in_a_missing_directory_is_refused_before_the_job_runs(tmp_path: Path) -> None:
    run = runner(tmp_path / "home", tmp_path)
    missing = tmp_path / "nowhere" / "report.xml"
    result = run("run", spec(tmp_path, "ok", "command: ['true']\n"), "--junit", str(missing))
    line = assert_one_line_usage_error(result)
    assert "--junit" in line and "does not exist" in line
    assert run("list", "--json").stdout.strip() == "[]"


def _job(name: str, state: JobState, **fields: object) -> Job:
    base: dict[str, object] = {
        "job_id": JobId(f"j-{name}"),
        "name": name,
        "project": "p",
        "workload_class": "batch",
        "backend": "local",
        "spec": {},
        "state": state,
        "version": 1,
        "created_at": 1_700_000_000.0,
        "updated_at": 1_700_000_000.0,
    }
    return Job(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "child", "failures", "skipped", "errors"),
    [
        (JobState.CANCELLED, "skipped", "0", "1", "0"),
        (JobState.LOST, "failure", "1", "0", "0"),
        (JobState.RUNNING, "error", "0", "0", "1"),
    ],
)
def test_cancelled_skipped_lost_failed_unfinished_an_error(
    state: JobState, child: str, failures: str, skipped: str, errors: str
) -> None:
    job = _job("one", state, reason="why\x07 it ended", failure_class=FailureClass.LOST)
    text = junit_report([(job, [])], lambda _: Output())
    SCHEMA.validate(text)
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == (
        failures,
        skipped,
        errors,
    )
    (case,) = suite.iter("testcase")
    assert [element.tag for element in case] == [child]


def test_read_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_text("".join(f"line {i}\n" for i in range(500)))
    assert read_tail(log, 3) == "line 497\nline 498\nline 499"
    assert read_tail(tmp_path / "absent.log") == ""


def test_the_gitlab_example_runs_the_sweep_and_publishes_its_report(tmp_path: Path) -> None:
    """examples/ci/gitlab-ci.yml's script, as a shell runner would run it (but the install)."""
    root = Path(__file__).parents[2]
    job = yaml.safe_load((root / "examples" / "ci" / "gitlab-ci.yml").read_text())["sweep"]
    lines = [line for line in job["script"] if "pip install" not in line]
    script = "set -e\n" + "\n".join(lines).replace("sweep-junit.xml", str(tmp_path / "r.xml"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env |= {
        "PATH": f"{installed_entry_point().parent}:{env.get('PATH', '')}",
        "HPCBRIDGE_HOME": str(tmp_path / "home"),
        "HPCBRIDGE_POLL_INTERVAL_S": "0.05",
        "CI_JOB_ID": "7",
    }
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    SCHEMA.validate(str(tmp_path / "r.xml"))
    assert len(list(ET.parse(tmp_path / "r.xml").getroot().iter("testcase"))) == 20
