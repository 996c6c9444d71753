"""End to end with the real thing: Prometheus scrapes ``hpcbridge serve``, evaluates the
generated SLO rules and sends to a real Alertmanager. Healthy jobs do not page; a burst
of jobs lost to the platform (killed from outside hpcbridge) does.

The SLO windows of this test are short (1 m / 20 s) so it finishes in about a minute;
everything else is the production path: the same rule generator, metrics and server.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.slo import generate_rules, load_slo_file, rules_to_yaml
from hpcbridge.spec import load_spec_document
from hpcbridge.states import JobState
from hpcbridge.store import Job
from tests.api._procs import (
    binary,
    hpcbridge_argv,
    hpcbridge_env,
    start,
    stop,
    wait_ready,
    wait_until,
)
from tests.api.conftest import free_port

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

SLO_FILE = """\
apiVersion: hpcbridge/v1
kind: SLOList
evaluation_interval: 1s
slos:
  - name: platform-success
    description: Logical jobs not failed by the platform (test windows)
    window: 10m
    objective: 0.99
    sli:
      ratio:
        total: {metric: hpcbridge_jobs_finished_total, where_not: {outcome: cancelled}}
        bad:
          metric: hpcbridge_jobs_finished_total
          where: {failure_class: [node_failure, preempted, lost, backend_unavailable]}
    alerting:
      page: [{long: 1m, short: 20s, burn_rate: 14.4}]
      ticket: [{long: 5m, short: 1m, burn_rate: 1}]
      min_bad_events: 3
    runbook: node-failure
"""
PAGE = 'alertname="HpcbridgeSloBurnRate"'


@dataclass
class Stack:
    tmp: Path
    settings: Settings
    client: Client
    serve_url: str
    alertmanager_url: str
    prometheus_url: str | None
    processes: list[subprocess.Popen[bytes]]


def _alertmanager(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = binary("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")
    config = tmp / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n"
    )
    port = free_port()
    log = tmp / "alertmanager.log"
    process = start(
        [
            exe,
            f"--config.file={config}",
            f"--storage.path={tmp / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", process, log)
    return process, url


def _prometheus(
    tmp: Path, serve_port: int, alertmanager: str
) -> tuple[subprocess.Popen[bytes], str]:
    exe = binary("prometheus", package="prometheus")
    slos = load_slo_file(tmp / "slo.yaml").slos
    (tmp / "rules.yml").write_text(rules_to_yaml(generate_rules(slos)))
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": "hpcbridge", "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}]}
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    process = start(
        [
            exe,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", process, log)
    return process, url


def _stack(tmp: Path, *, with_prometheus: bool) -> Iterator[Stack]:
    (tmp / "slo.yaml").write_text(SLO_FILE)
    home = tmp / "home"
    processes: list[subprocess.Popen[bytes]] = []
    client: Client | None = None
    try:
        am_process, am_url = _alertmanager(tmp)
        processes.append(am_process)
        serve_port = free_port()
        args = ["serve", "--port", str(serve_port)]
        if not with_prometheus:  # the built-in evaluator instead of Prometheus' rules
            args += ["--alertmanager-url", am_url, "--slo-file", str(tmp / "slo.yaml")]
            args += ["--repeat-interval", "5"]
        serve_log = tmp / "serve.log"
        serve = start(hpcbridge_argv(*args), serve_log, hpcbridge_env(home))
        processes.append(serve)
        serve_url = f"http://127.0.0.1:{serve_port}"
        wait_ready(f"{serve_url}/healthz", serve, serve_log)
        prometheus_url = None
        if with_prometheus:
            prom_process, prometheus_url = _prometheus(tmp, serve_port, am_url)
            processes.append(prom_process)
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'hpcbridge.db'}",
            required_tags=(),
            local_gpus=0,
            poll_interval_s=0.05,
        )
        client = Client(settings)  # submits only: the server's reconciler runs the jobs
        yield Stack(tmp, settings, client, serve_url, am_url, prometheus_url, processes)
    finally:
        if client is not None:
            client.close()
        for process in reversed(processes):
            stop(process)


@pytest.fixture
def prometheus_stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(tmp_path, with_prometheus=True)


@pytest.fixture
def evaluator_stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(tmp_path, with_prometheus=False)


def _submit(stack: Stack, count: int, command: list[str], name: str) -> list[Job]:
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": name,
            "project": "climate",
            "command": command,
            "retry": {"max_attempts": 1},
        },
        source="test",
    )
    return stack.client.submit_many([spec] * count)


def _states(stack: Stack, jobs: list[Job]) -> list[JobState]:
    return [stack.client.get(job.job_id).state for job in jobs]


def _kill_from_outside(stack: Stack, jobs: list[Job]) -> None:
    """SIGKILL each job's process group, as an OOM killer or a dying node would."""
    runs = stack.settings.runs_dir
    pid_files = [runs / job.job_id / "attempt-1" / "pid" for job in jobs]
    wait_until(
        lambda: all(p.exists() and p.read_text().endswith("\n") for p in pid_files),
        timeout_s=30,
        what="the jobs to start",
        log=stack.tmp / "serve.log",
    )
    for pid_file in pid_files:
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def _alertmanager_alerts(stack: Stack, *matchers: str) -> list[dict[str, Any]]:
    params = httpx.QueryParams([("filter", m) for m in matchers])
    response = httpx.get(f"{stack.alertmanager_url}/api/v2/alerts", params=params, timeout=5)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def _query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    assert stack.prometheus_url is not None
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _healthy_traffic_does_not_alert(stack: Stack) -> None:
    healthy = _submit(stack, 6, ["true"], "healthy")
    wait_until(
        lambda: _states(stack, healthy) == [JobState.SUCCEEDED] * 6,
        timeout_s=60,
        what="the healthy jobs",
        log=stack.tmp / "serve.log",
    )
    if stack.prometheus_url is not None:
        seen = 'sum(hpcbridge_jobs_finished_total{outcome="succeeded"})'
        wait_until(
            lambda: [r["value"][1] for r in _query(stack, seen)] == ["6"],
            timeout_s=30,
            what="Prometheus to scrape the successes",
            log=stack.tmp / "prometheus.log",
        )
        # Several evaluations of the rules with healthy data only.
        wait_until(
            lambda: bool(_query(stack, 'slo:sli_error:ratio_rate20s{slo="platform-success"}')),
            timeout_s=30,
            what="the recording rules",
        )
        ratio = _query(stack, 'slo:sli_error:ratio_rate1m{slo="platform-success"}')
        assert [float(r["value"][1]) for r in ratio] == [0.0]
        assert _query(stack, "ALERTS") == []
    else:
        done = _evaluations(stack)
        wait_until(
            lambda: _evaluations(stack) >= done + 3,
            timeout_s=30,
            what="three evaluations of the healthy jobs",
        )
    assert _alertmanager_alerts(stack, PAGE) == []


def _evaluations(stack: Stack) -> int:
    health = httpx.get(f"{stack.serve_url}/healthz", timeout=5).json()
    count: int = health["slo_evaluator"]["evaluations"]
    return count


def test_burst_of_lost_jobs_pages_through_prometheus(prometheus_stack: Stack) -> None:
    stack = prometheus_stack
    _healthy_traffic_does_not_alert(stack)
    doomed = _submit(stack, 5, ["sleep", "120"], "doomed")
    _kill_from_outside(stack, doomed)
    wait_until(
        lambda: _states(stack, doomed) == [JobState.FAILED] * 5,
        timeout_s=60,
        what="the killed jobs to be failed as lost",
        log=stack.tmp / "serve.log",
    )
    assert {stack.client.get(j.job_id).failure_class for j in doomed} == {"lost"}
    wait_until(
        lambda: bool(_alertmanager_alerts(stack, PAGE, 'severity="page"')),
        timeout_s=60,
        what="the page to reach Alertmanager",
        log=stack.tmp / "prometheus.log",
    )
    [page] = _alertmanager_alerts(stack, PAGE, 'severity="page"')
    assert page["labels"]["slo"] == "platform-success"
    assert page["annotations"]["runbook_url"] == "docs/runbooks/node-failure.md"
    assert stack.prometheus_url is not None
    port = stack.prometheus_url.rsplit(":", 1)[1]
    assert f":{port}/" in page["generatorURL"]  # sent by Prometheus' rules


def test_burst_of_lost_jobs_pages_through_the_builtin_evaluator(evaluator_stack: Stack) -> None:
    stack = evaluator_stack
    _healthy_traffic_does_not_alert(stack)
    doomed = _submit(stack, 4, ["sleep", "120"], "doomed")
    _kill_from_outside(stack, doomed)
    wait_until(
        lambda: bool(_alertmanager_alerts(stack, PAGE, 'severity="page"')),
        timeout_s=60,
        what="the page to reach Alertmanager",
        log=stack.tmp / "serve.log",
    )
    [page] = _alertmanager_alerts(stack, PAGE, 'severity="page"')
    assert page["labels"]["slo"] == "platform-success"
    ids = set(page["annotations"]["job_ids"].split(", "))
    assert ids <= {j.job_id for j in doomed} and len(ids) >= 3
    wait_until(
        lambda: bool(_alertmanager_alerts(stack, 'alertname="HpcbridgeJobFailures"')),
        timeout_s=30,
        what="the grouped job failure notice",
    )
    [notice] = _alertmanager_alerts(stack, 'alertname="HpcbridgeJobFailures"')
    assert notice["labels"]["failure_class"] == "lost"
    health = httpx.get(f"{stack.serve_url}/healthz", timeout=5).json()
    assert "platform-success/page" in health["slo_evaluator"]["firing"]
