"""Metrics without ``serve``: a node-exporter textfile and a real Pushgateway, written by the
installed ``hpcbridge run``; the export's pacing with an injected clock."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hpcbridge.config import Settings
from hpcbridge.errors import ConfigError
from hpcbridge.store import open_store
from hpcbridge.telemetry import MetricsExport
from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error, cli_env, hpcbridge

__all__ = ["cli_env", "hpcbridge"]  # fixtures: the installed hpcbridge in a home of its own

SPEC = "apiVersion: hpcbridge/v1\nkind: Job\nname: counted\nproject: metrics\ncommand: ['true']\n"


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def _run_one_job(hpcbridge: RunHpcbridge, tmp_path: Path, env: dict[str, str]) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC)
    result = hpcbridge("run", str(spec), env=env)
    assert result.returncode == 0, result.stderr


def test_run_writes_a_textfile_node_exporter_reads(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    textfile = tmp_path / "textfile" / "hpcbridge.prom"
    textfile.parent.mkdir()
    _run_one_job(hpcbridge, tmp_path, {"HPCBRIDGE_METRICS_TEXTFILE": str(textfile)})
    text = textfile.read_text()
    jobs = _families(text)["hpcbridge_jobs"]
    assert any(labels.get("project") == "metrics" for labels, _ in jobs), jobs
    assert "hpcbridge_reconciler_cycles" in _families(text)
    assert [p.name for p in textfile.parent.iterdir()] == ["hpcbridge.prom"]  # no temp left
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: scripts/test installs Prometheus")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("metrics.txt", "does not end in .prom"),
        ("missing/hpcbridge.prom", "does not exist; create it"),
    ],
)
def test_a_bad_textfile_is_one_line(
    name: str, problem: str, hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC)
    path = tmp_path / name
    result = hpcbridge("run", str(spec), env={"HPCBRIDGE_METRICS_TEXTFILE": str(path)})
    line = assert_one_line_usage_error(result)
    assert line.startswith(f"error: HPCBRIDGE_METRICS_TEXTFILE={path}"), line
    assert problem in line, line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on loopback, started for this test."""
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.skip(
            "needs the prometheus-pushgateway Debian package (scripts/test installs it as root)"
        )
    url = f"http://127.0.0.1:{_free_port()}"
    log = (tmp_path / "pushgateway.log").open("w")
    process = subprocess.Popen(
        [binary, f"--web.listen-address={url.removeprefix('http://')}"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail((tmp_path / "pushgateway.log").read_text())
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_run_pushes_to_a_pushgateway(
    hpcbridge: RunHpcbridge, tmp_path: Path, pushgateway: str
) -> None:
    _run_one_job(hpcbridge, tmp_path, {"HPCBRIDGE_PUSHGATEWAY_URL": pushgateway})
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5) as response:
        families = _families(response.read().decode())
    jobs = families["hpcbridge_jobs"]
    pushed = [labels for labels, _ in jobs if labels.get("project") == "metrics"]
    assert pushed, jobs
    assert pushed[0]["job"] == "hpcbridge"
    assert pushed[0]["instance"] == socket.gethostname()


def test_an_unreachable_pushgateway_does_not_fail_the_job(
    hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    unreachable = f"http://127.0.0.1:{_free_port()}"
    _run_one_job(hpcbridge, tmp_path, {"HPCBRIDGE_PUSHGATEWAY_URL": unreachable})


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_exports_at_most_every_interval_and_once_more_at_close(tmp_path: Path) -> None:
    store = open_store(Settings(home=tmp_path / "home"))
    textfile = tmp_path / "hpcbridge.prom"
    clock = _Clock()
    export = MetricsExport(store, textfile=textfile, interval_s=15, clock=clock)
    try:
        export.close()
        assert not textfile.exists()  # no cycle ran: nothing to say
        export.after_cycle()
        assert textfile.exists()  # the first cycle exports at once
        textfile.unlink()
        clock.now += 5
        export.after_cycle()
        assert not textfile.exists()  # within the interval
        clock.now += 10
        export.after_cycle()
        assert textfile.exists()
        textfile.unlink()
        clock.now += 1
        export.after_cycle()
        export.close()  # the cycle since the last export is written
        assert textfile.exists()
    finally:
        store.close()


def test_textfile_checked_at_start(tmp_path: Path) -> None:
    store = open_store(Settings(home=tmp_path / "home"))
    try:
        with pytest.raises(ConfigError, match=r"does not end in \.prom"):
            MetricsExport(store, textfile=tmp_path / "metrics")
    finally:
        store.close()
