"""Kill or fail a save at every file-system call: a reader must see the old or the new
checkpoint, complete, and never anything in between."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.checkpoint import Checkpointer
from hpcbridge.checkpoint._store import TEMP_PREFIX, TRASH_PREFIX, verify
from tests.checkpoint._save_child import TRAPPED, payload

CHILD = Path(__file__).with_name("_save_child.py")


def run_child(directory: Path, kill_at: int, step: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), str(directory), str(kill_at), str(step)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def template(tmp_path: Path) -> Path:
    """Steps 1 and 2 exist; with keep=2 a save of step 3 also prunes step 1."""
    path = tmp_path / "template"
    ckpt = Checkpointer(path, keep=2, attempt=1)
    for step in (1, 2):
        ckpt.save_bytes(step, payload(step))
    return path


def check_consistent(directory: Path, allowed: set[int]) -> int:
    """Every visible checkpoint verifies; the newest is one of ``allowed``; return its step."""
    ckpt = Checkpointer(directory, keep=2, attempt=2)
    for _, path in ckpt.checkpoints():
        verify(path, "full")
    found = ckpt.latest_valid()
    assert found is not None
    assert found.skipped == ()
    assert found.step in allowed
    for name, content in payload(found.step).items():
        assert found.read_bytes(name) == content
    return found.step


def check_next_attempt_cleans_up(directory: Path, step: int) -> None:
    ckpt = Checkpointer(directory, keep=2, attempt=2)
    ckpt.save_json(step, {"after": "crash"})
    debris = [n for n in os.listdir(directory) if n.startswith((TEMP_PREFIX, TRASH_PREFIX))]
    assert debris == []


@pytest.mark.parametrize(("new_step", "label"), [(3, "new step"), (2, "same step again")])
def test_sigkill_before_every_file_system_call(tmp_path: Path, new_step: int, label: str) -> None:
    base = template(tmp_path)
    counting = tmp_path / "count"
    shutil.copytree(base, counting)
    done = run_child(counting, -1, new_step)
    assert done.returncode == 0, done.stderr
    total = int(done.stdout)
    assert total >= 20, "the save should pass through many trapped calls"

    outcomes: dict[int, int] = {}
    for kill_at in range(total):
        work = tmp_path / f"kill-{kill_at}"
        shutil.copytree(base, work)
        killed = run_child(work, kill_at, new_step)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        step = check_consistent(work, {2, new_step})
        outcomes[step] = outcomes.get(step, 0) + 1
        check_next_attempt_cleans_up(work, new_step + 1)
        shutil.rmtree(work)
    # Early kills keep the old state, late ones (after the rename) the new: both were hit.
    if new_step != 2:
        assert outcomes.get(2) and outcomes.get(new_step), outcomes


class InjectedError(OSError):
    pass


def test_io_error_at_every_file_system_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = template(tmp_path)
    counter = {"calls": 0, "fail_at": -1}
    real = {name: getattr(os, name) for name in TRAPPED}

    def trap(name: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            index = counter["calls"]
            counter["calls"] += 1
            if index == counter["fail_at"]:
                raise InjectedError(errno.EIO, f"injected failure of os.{name}")
            return real[name](*args, **kwargs)

        return wrapper

    def attempt(directory: Path, fail_at: int) -> BaseException | None:
        ckpt = Checkpointer(directory, keep=2, attempt=1)
        counter["calls"], counter["fail_at"] = 0, fail_at
        for name in TRAPPED:
            monkeypatch.setattr(os, name, trap(name))
        try:
            with ckpt.save(3) as d:
                for name, content in payload(3).items():
                    d.write_bytes(name, content)
        except InjectedError as exc:
            return exc
        finally:
            for name in TRAPPED:
                monkeypatch.setattr(os, name, real[name])
        return None

    counting = tmp_path / "count"
    shutil.copytree(base, counting)
    assert attempt(counting, -1) is None
    total = counter["calls"]

    raised_and_kept_old = 0
    for fail_at in range(total):
        work = tmp_path / f"fail-{fail_at}"
        shutil.copytree(base, work)
        error = attempt(work, fail_at)
        step = check_consistent(work, {2, 3})
        if error is None:
            assert step == 3, "a save that reports success must be visible"
        raised_and_kept_old += error is not None and step == 2
        if error is not None and step == 2:
            # A failed save cleans up after itself unless the cleanup itself was hit.
            leftovers = [n for n in os.listdir(work) if n.startswith(TEMP_PREFIX)]
            assert len(leftovers) <= 1
        check_next_attempt_cleans_up(work, 4)
        shutil.rmtree(work)
    assert raised_and_kept_old > 10
