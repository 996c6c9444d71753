"""Start and stop the real processes an integration test needs (by PID, on loopback)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def binary(*names: str, package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"{names[0]} not found; install Debian's {package!r} package to run this")


def start(
    argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            cwd=REPO,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM this one process, SIGKILL it if it does not stop within 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until(
    check: Callable[[], bool], *, timeout_s: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            detail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}\n{detail}")
        time.sleep(0.2)


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, *, timeout_s: float = 30
) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{url}: process exited with {process.returncode}\n{log.read_text()}")
        return httpx.get(url, timeout=2).status_code == 200

    wait_until(ready, timeout_s=timeout_s, what=url, log=log)


def hpcbridge_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBRIDGE_")}
    env.update(
        HPCBRIDGE_HOME=str(home),
        HPCBRIDGE_POLL_INTERVAL_S="0.05",
        HPCBRIDGE_KILL_GRACE_S="1",
        HPCBRIDGE_LOST_GRACE_S="5",
        HPCBRIDGE_LOCAL_CPUS="16",
        HPCBRIDGE_LOCAL_GPUS="0",
    )
    return env


def hpcbridge_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpcbridge", *args]
