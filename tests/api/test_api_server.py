"""The server: /metrics and /healthz over a runtime that really runs jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.api import Runtime, ServeOptions
from hpcbridge.cli._serve import serve_environment
from hpcbridge.config import Settings
from hpcbridge.errors import ConfigError
from hpcbridge.spec import JobSpec
from hpcbridge.states import JobState
from tests.api.conftest import Served, serve, wait_for


def test_metrics_count_real_jobs_run_by_the_server(
    served: Served, make_spec: Callable[..., JobSpec]
) -> None:
    http, runtime = served.http, served.runtime
    good = runtime.client.submit(make_spec(name="good", command=["true"]))
    bad = runtime.client.submit(make_spec(name="bad", command=["false"], retry={"max_attempts": 1}))
    wait_for(lambda: all(runtime.client.get(j.job_id).state.terminal for j in (good, bad)))
    assert runtime.client.get(bad.job_id).state is JobState.FAILED
    line = (
        'hpcbridge_jobs_finished_total{failure_class="",outcome="succeeded",'
        'project="default",workload_class="batch"} '
    )
    first = http.get("/metrics")  # a project born after start-up shows at 0 once
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain")
    assert line + "0.0" in first.text
    text = http.get("/metrics").text
    assert line + "1.0" in text
    assert (
        'hpcbridge_jobs_finished_total{failure_class="app_error",outcome="failed",'
        'project="default",workload_class="batch"} 1.0'
    ) in text
    cycles = next(x for x in text.splitlines() if x.startswith("hpcbridge_reconciler_cycles_total"))
    assert float(cycles.split()[-1]) > 0


def test_healthz_reports_the_loops(served: Served) -> None:
    http, runtime = served.http, served.runtime
    wait_for(lambda: runtime.leader and runtime.caught_up)
    response = http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["reconciler"]["running"] and body["reconciler"]["leader"]
    assert "slo_evaluator" not in body


def test_healthz_is_503_when_the_reconciler_is_not_running(settings: Settings) -> None:
    runtime = Runtime(settings, ServeOptions())
    for server in serve(runtime, start=False):
        response = server.http.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "unhealthy"
        assert server.http.get("/metrics").status_code == 200
    runtime.client.close()


def test_options_travel_through_the_environment(tmp_path: Path) -> None:
    slo_file = tmp_path / "slo.yaml"
    env = serve_environment(
        reconcile=False,
        alertmanager_url="http://127.0.0.1:9093",
        slo_file=slo_file,
        repeat_interval_s=15,
    )
    assert ServeOptions.from_env(env) == ServeOptions(
        reconcile=False,
        alertmanager_url="http://127.0.0.1:9093",
        slo_file=slo_file.resolve(),
        repeat_interval_s=15.0,
    )
    assert ServeOptions.from_env({}) == ServeOptions()
    with pytest.raises(ConfigError, match="HPCBRIDGE_SERVE_RECONCILE"):
        ServeOptions.from_env({"HPCBRIDGE_SERVE_RECONCILE": "maybe"})
    with pytest.raises(ConfigError, match="positive"):
        ServeOptions.from_env({"HPCBRIDGE_ALERT_REPEAT_INTERVAL_S": "0"})
