"""The preemption signal only sets a flag; the job saves and exits with the requeue code."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpcbridge.checkpoint import (
    Checkpointer,
    PreemptionFlag,
    exit_for_requeue,
    install_preemption_handler,
)
from tests.checkpoint._helpers import read_events

MakeCkpt = Callable[..., Checkpointer]


@pytest.fixture(autouse=True)
def restore_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def deliver(sig: signal.Signals, flag: Callable[[], bool]) -> None:
    """Send ``sig`` to this process; Python runs the handler between bytecodes."""
    os.kill(os.getpid(), sig)
    deadline = time.monotonic() + 5
    while not flag() and time.monotonic() < deadline:
        time.sleep(0.001)


def test_sigterm_sets_the_flag_by_default() -> None:
    flag = install_preemption_handler()
    assert not flag.is_set and not flag
    deliver(signal.SIGTERM, lambda: flag.is_set)
    assert flag.is_set and flag.signum == signal.SIGTERM
    flag.uninstall()


def test_signal_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCBRIDGE_CHECKPOINT_SIGNAL", "SIGUSR1")
    flag = install_preemption_handler()
    deliver(signal.SIGUSR1, lambda: flag.is_set)
    assert flag.signum == signal.SIGUSR1


def test_checkpointer_flag_and_should_save(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt(handle_preemption=True, signal="USR1", interval=3600)
    assert not ckpt.preempted and not ckpt.should_save()
    deliver(signal.SIGUSR1, lambda: ckpt.preempted)
    assert ckpt.preempted
    assert ckpt.should_save(), "a preempted job should save at once, whatever the interval"


def test_uninstall_puts_back_the_previous_handler() -> None:
    seen: list[int] = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    flag = PreemptionFlag().install(signal.SIGUSR1)
    flag.uninstall()
    deliver(signal.SIGUSR1, lambda: bool(seen))
    assert seen == [signal.SIGUSR1] and not flag.is_set


def test_install_outside_the_main_thread_is_refused() -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            install_preemption_handler("SIGUSR1")
        except RuntimeError as exc:
            errors.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_exit_for_requeue_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exited:
        exit_for_requeue()
    assert exited.value.code == 75
    monkeypatch.setenv("HPCBRIDGE_REQUEUE_EXIT_CODE", "99")
    with pytest.raises(SystemExit) as exited:
        exit_for_requeue()
    assert exited.value.code == 99
    with pytest.raises(SystemExit) as exited:
        exit_for_requeue(3)
    assert exited.value.code == 3


def test_checkpointer_exit_records_an_event(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt = make_ckpt(requeue_exit_code=80, handle_preemption=True)
    ckpt.save_json(12, {})
    deliver(signal.SIGTERM, lambda: ckpt.preempted)
    with pytest.raises(SystemExit) as exited:
        ckpt.exit_for_requeue()
    assert exited.value.code == 80
    event = read_events(status_dir)[-1]
    assert event["type"] == "requeue_requested"
    assert event["exit_code"] == 80 and event["step"] == 12
    assert event["signal"] == signal.SIGTERM
