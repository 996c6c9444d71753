"""The real ``hpcbridge serve`` on 127.0.0.1 and the installed ``hpcbridge`` in client mode
(``--server`` / ``HPCBRIDGE_SERVER`` + ``HPCBRIDGE_TOKEN``): the bootstrap token file, then
submit, wait (with a JUnit report), list, status, logs, why and cancel through the API, and
errors as the same one line and exit code as in embedded mode."""

from __future__ import annotations

import json
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbridge.api._bootstrap import BOOTSTRAP_FILE
from tests.api._procs import hpcbridge_argv, hpcbridge_env, start, stop, wait_ready, wait_until
from tests.api.conftest import free_port
from tests.cli.conftest import RunHpcbridge, installed_entry_point


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(url, bootstrap token)`` of a real server with its own data directory."""
    home = tmp_path / "server-home"
    port = free_port()
    log = tmp_path / "serve.log"
    process = start(hpcbridge_argv("serve", "--port", str(port)), log, hpcbridge_env(home))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/healthz", process, log)
        token_file = home / BOOTSTRAP_FILE
        wait_until(token_file.exists, timeout_s=10, what="the bootstrap token file", log=log)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in log.read_text()  # the log says where, never the token
        assert str(token_file) in log.read_text()
        yield url, token
    finally:
        stop(process)


def _cli(tmp_path: Path, env: dict[str, str]) -> RunHpcbridge:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed_entry_point()), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def test_client_mode_through_the_real_server(tmp_path: Path, server: tuple[str, str]) -> None:
    url, token = server
    # a home of the client's own: nothing may be stored there in client mode
    env = hpcbridge_env(tmp_path / "client-home") | {"HPCBRIDGE_TOKEN": token, "COLUMNS": "200"}
    run = _cli(tmp_path, env)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "apiVersion: hpcbridge/v1\nkind: Job\nname: sweep\nproject: ci\n"
        "array: {params: {x: [0, 1, 2]}}\n"
        "command: [sh, -c, 'echo task-$0; exit $(($0 % 2))', '{x}']\n"
    )
    submitted = run("--server", url, "submit", str(sweep), "--key", "ci-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    again = run("--server", url, "submit", str(sweep), "--key", "ci-1")
    assert again.stdout.strip() == job_id

    env["HPCBRIDGE_SERVER"] = url  # from here on, from the environment
    report = tmp_path / "junit.xml"
    waited = run("wait", job_id, "--junit", str(report), "--timeout", "90s")
    assert waited.returncode == 1, (waited.stdout, waited.stderr)  # task 1 failed
    cases = list(ET.parse(report).getroot().iter("testcase"))
    assert [c.get("name") for c in cases] == ["sweep[0]", "sweep[1]", "sweep[2]"]
    assert [c.find("failure") is not None for c in cases] == [False, True, False]
    assert "task-1" in (cases[1].findtext("system-out") or "")

    listed = json.loads(run("list", "--json").stdout)
    assert [j["job_id"] for j in listed] == [job_id]
    status = json.loads(run("status", f"{job_id}.1", "--json").stdout)
    assert status["job"]["state"] == "failed"
    logs = run("logs", f"{job_id}.2")
    assert logs.stdout == "task-2\n"
    followed = run("logs", f"{job_id}.2", "--follow")  # the server streams until the end
    assert (followed.returncode, followed.stdout) == (0, "task-2\n"), followed.stderr
    as_json = json.loads(run("logs", f"{job_id}.1", "--json").stdout)
    assert as_json["stdout"]["lines"] == ["task-1"] and as_json["attempt"] == 1
    why = run("why", f"{job_id}.1")
    assert why.returncode == 0 and "exited" in why.stdout, why.stderr
    cancel = run("cancel", f"{job_id}.0")
    assert cancel.returncode == 1 and "already finished (succeeded)" in cancel.stderr

    sleeper = tmp_path / "sleeper.yaml"
    sleeper.write_text("apiVersion: hpcbridge/v1\nkind: Job\nname: nap\ncommand: [sleep, '60']\n")
    timed_out = run("run", str(sleeper), "--timeout", "1s", "--junit", str(report))
    assert timed_out.returncode == 2, (timed_out.stdout, timed_out.stderr)
    assert timed_out.stderr.startswith("error: --timeout 1s ran out")
    assert "Traceback" not in timed_out.stderr
    assert ET.parse(report).getroot().find("testsuite/testcase/error") is not None

    missing = run("status", "jnosuchjob")
    assert missing.returncode == 3 and missing.stderr.startswith("error: no job")
    assert "Traceback" not in missing.stderr
    env["HPCBRIDGE_TOKEN"] = "hpcb_wrong"
    denied = run("list")
    assert denied.returncode == 4, denied.stderr
    assert denied.stderr.splitlines()[0].startswith("error: authentication failed")
    assert not (tmp_path / "client-home" / "hpcbridge.db").exists()
