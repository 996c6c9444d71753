"""The local executor's launcher process: when it is SIGKILLed, no command runs twice,
the jobs it was running end as ``lost`` (their exit status is unknown), and the jobs it
had not started yet are started by a new launcher."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.backends._harness import LocalHarness, wait_for

from hpcbridge.backends import Phase
from hpcbridge.backends.local import LocalBackend
from hpcbridge.states import FailureClass

PROGRAM = "import sys, time; open(sys.argv[1], 'a').write('ran\\n'); time.sleep(1)"


@pytest.fixture
def two_cpus(tmp_path: Path) -> Iterator[LocalHarness]:
    harness = LocalHarness(tmp_path, local_cpus=2)
    try:
        yield harness
    finally:
        harness.close()


def test_a_killed_launcher_runs_nothing_twice_and_records_the_truth(
    two_cpus: LocalHarness,
) -> None:
    h = two_cpus
    outs = [h.shared_dir / f"job{i}" for i in range(4)]
    refs = [h.launch(h.spec(command=[h.python, "-c", PROGRAM, str(out)])) for out in outs]
    wait_for(lambda: outs[0].exists() and outs[1].exists(), 10, "two jobs to start")
    backend = h.backend
    assert isinstance(backend, LocalBackend) and backend._link is not None
    os.kill(backend._link.pid, signal.SIGKILL)
    seen = [h.wait(ref, timeout_s=20) for ref in refs]
    # The first two ran under the dead launcher: how they ended is unknown.
    assert [(s.phase, s.failure_class) for s in seen[:2]] == [(Phase.FAILED, FailureClass.LOST)] * 2
    assert all(s.reason and "launcher" in s.reason for s in seen[:2])
    # The other two were waiting for a slot: a new launcher started them, once.
    assert [s.phase for s in seen[2:]] == [Phase.SUCCEEDED] * 2
    assert [out.read_text() for out in outs] == ["ran\n"] * 4


def test_a_command_that_is_not_found_exits_127_and_says_so(two_cpus: LocalHarness) -> None:
    h = two_cpus
    ref = h.launch(h.spec(command=["/nonexistent/nosuch-command"]))
    seen = h.wait(ref)
    assert (seen.phase, seen.exit_code) == (Phase.FAILED, 127)
    _, stderr = h.backend.log_paths(ref) if isinstance(h.backend, LocalBackend) else (None, None)
    assert stderr is not None
    assert stderr.read_text().endswith("/nonexistent/nosuch-command: not found\n")


def test_the_reconciler_is_told_when_nothing_is_left_in_flight(two_cpus: LocalHarness) -> None:
    """Each exit wakes the reconciler; the last one also says that everything is in, so a
    pause between busy cycles ends at once instead of leaving the last results waiting."""
    h = two_cpus
    calls: list[bool] = []

    def wake(*, settled: bool = False) -> None:
        calls.append(settled)

    h.backend = LocalBackend(h.settings, wake)
    marks = [h.shared_dir / f"job{i}" for i in range(4)]
    refs = [h.launch(h.spec(command=[h.python, "-c", PROGRAM, str(m)])) for m in marks]
    seen = [h.wait(ref, timeout_s=20) for ref in refs]
    assert [s.phase for s in seen] == [Phase.SUCCEEDED] * 4
    wait_for(lambda: len(calls) >= 4, 5, "a wake-up for each exit")
    # Two slots for four one-second jobs: the first exits leave work queued or running.
    assert calls[0] is False and calls[-1] is True, calls
    assert calls.count(True) == 1, calls
