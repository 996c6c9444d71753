"""``hpcbridge serve`` as an operator runs it: a real process, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env.update(HPCBRIDGE_HOME=str(tmp_path / "home"), HPCBRIDGE_POLL_INTERVAL_S="0.05")
    return env


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hpcbridge", "serve", "--port", str(port)],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        output = (tmp_path / "serve.log").read_text()
        assert health is not None and health.status_code == 200, output
        assert health.json()["reconciler"]["running"]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert "# TYPE hpcbridge_jobs_finished_total counter" in metrics.text
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then lets the signal end the process as usual.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_serve_refuses_a_bad_slo_file(tmp_path: Path) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text("apiVersion: hpcbridge/v1\nkind: SLOList\nslos: []\n")
    result = subprocess.run(
        [sys.executable, "-m", "hpcbridge", "serve", "--slo-file", str(bad)],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "slos" in result.stderr and "define at least one SLO" in result.stderr
