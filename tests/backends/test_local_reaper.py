"""The local executor's reaper: every child reaped once, its callback called after, one
thread for all of them where pidfds exist, and a thread per child where they do not."""

from __future__ import annotations

import subprocess
import threading
import time
from functools import partial

import pytest

from hpcbridge.backends.local._reaper import Reaper


def _wait_until(condition: threading.Event, timeout_s: float = 30) -> None:
    assert condition.wait(timeout_s), "timed out waiting for the reaper"


def _watch_many(reaper: Reaper, count: int) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    children = [subprocess.Popen(["sh", "-c", f"exit {i % 3}"]) for i in range(count)]
    codes: list[int] = []
    lock = threading.Lock()
    all_done = threading.Event()

    def on_exit(child: subprocess.Popen[bytes]) -> None:
        with lock:
            assert child.returncode is not None  # reaped before the callback
            codes.append(child.returncode)
            if len(codes) == count:
                all_done.set()

    for child in children:
        reaper.watch(child, partial(on_exit, child))
    _wait_until(all_done)
    return children, codes


def test_every_child_is_reaped_once_then_its_callback_runs() -> None:
    reaper = Reaper()
    _, codes = _watch_many(reaper, 50)
    assert sorted(codes) == sorted(i % 3 for i in range(50))


def test_one_thread_waits_for_all_and_ends_when_none_is_left() -> None:
    reaper = Reaper()
    if reaper._epoll is None:
        pytest.skip("no epoll here: each child has its own waiting thread")
    sleepers = [subprocess.Popen(["sleep", "0.3"]) for _ in range(20)]
    done = threading.Semaphore(0)
    for child in sleepers:
        reaper.watch(child, done.release)
    names = [t.name for t in threading.enumerate()]
    assert names.count("hpcbridge-local-reaper") == 1
    for _ in sleepers:
        assert done.acquire(timeout=30)
    deadline = time.monotonic() + 10
    while reaper._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reaper._thread is None
    _watch_many(reaper, 3)  # and a new one starts for the next children


def test_a_failing_callback_does_not_stop_the_reaping_of_others() -> None:
    reaper = Reaper()
    done = threading.Event()

    def fails() -> None:
        raise RuntimeError("bookkeeping bug")

    reaper.watch(subprocess.Popen(["true"]), fails)
    reaper.watch(subprocess.Popen(["true"]), done.set)
    _wait_until(done)


def test_without_pidfds_each_child_gets_a_waiting_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reaper = Reaper()
    monkeypatch.setattr(reaper, "_epoll", None)
    _, codes = _watch_many(reaper, 5)
    assert sorted(codes) == [0, 0, 1, 1, 2]
    assert reaper._thread is None


def test_a_child_reaped_elsewhere_first_still_gets_its_callback() -> None:
    reaper = Reaper()
    child = subprocess.Popen(["true"])
    child.wait()
    done = threading.Event()
    reaper.watch(child, done.set)
    _wait_until(done)
