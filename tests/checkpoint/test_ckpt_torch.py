"""hpcbridge.checkpoint.torch: full training state round trip and asynchronous saves."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.checkpoint import Checkpointer, CheckpointError
from tests.checkpoint._helpers import read_events

torch: Any = pytest.importorskip("torch")

import hpcbridge.checkpoint.torch as ckpt_torch  # noqa: E402

MakeCkpt = Callable[..., Checkpointer]


def model_and_optimizer(width: int = 16) -> tuple[Any, Any]:
    model = torch.nn.Sequential(
        torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return model, optimizer


def train(model: Any, optimizer: Any, steps: int) -> None:
    for _ in range(steps):
        x = torch.randn(8, model[0].in_features)
        noise = random.random()
        loss = (model(x) - noise).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def same_tensors(a: Any, b: Any) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.values(), b.values(), strict=True))


def test_round_trip_continues_exactly(make_ckpt: MakeCkpt) -> None:
    random.seed(1)
    torch.manual_seed(1)
    model, optimizer = model_and_optimizer()
    train(model, optimizer, 5)
    saver = ckpt_torch.TorchCheckpointer(make_ckpt())
    saver.save(5, model=model, optimizer=optimizer, extra={"epoch": 2})
    train(model, optimizer, 5)  # the reference continuation
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    random.seed(999)  # scramble every RNG the restore must put back
    torch.manual_seed(999)
    fresh, fresh_optimizer = model_and_optimizer()
    restored = saver.restore(model=fresh, optimizer=fresh_optimizer)
    assert restored is not None
    assert (restored.step, restored.extra) == (5, {"epoch": 2})
    train(fresh, fresh_optimizer, 5)
    assert same_tensors(fresh.state_dict(), reference)


def test_numpy_rng_is_saved_when_numpy_is_loaded(make_ckpt: MakeCkpt) -> None:
    numpy = pytest.importorskip("numpy")
    numpy.random.seed(3)
    saver = ckpt_torch.TorchCheckpointer(make_ckpt())
    model, _ = model_and_optimizer()
    saver.save(1, model=model)
    expected = numpy.random.random(4)
    numpy.random.seed(4)
    saver.restore(model=model)
    assert (numpy.random.random(4) == expected).all()


def test_restore_with_nothing_saved(make_ckpt: MakeCkpt) -> None:
    model, _ = model_and_optimizer()
    assert ckpt_torch.TorchCheckpointer(make_ckpt()).restore(model=model) is None


def test_async_save_snapshots_and_stalls_less_than_sync(
    make_ckpt: MakeCkpt, status_dir: Path
) -> None:
    model, optimizer = model_and_optimizer(width=2048)  # 16 MiB of weights, 48 MiB with Adam
    train(model, optimizer, 1)
    saver = ckpt_torch.TorchCheckpointer(make_ckpt(keep=5))
    saver.save(1, model=model, optimizer=optimizer)  # warm-up: file cache, buffers
    saver.save(2, model=model, optimizer=optimizer, blocking=False)
    saver.wait()

    sync_times, stalls = [], []
    for step in range(3, 6):
        started = time.perf_counter()
        saver.save(step, model=model, optimizer=optimizer)
        sync_times.append(time.perf_counter() - started)
    for step in range(6, 9):
        snapshot = {k: v.clone() for k, v in model.state_dict().items()}
        saver.save(step, model=model, optimizer=optimizer, blocking=False)
        assert saver.last_stall_s is not None
        stalls.append(saver.last_stall_s)
        with torch.no_grad():  # training goes on while the save is persisted
            for parameter in model.parameters():
                parameter.add_(1.0)
        committed = saver.wait()
        assert committed is not None and committed.step == step
        check, _ = model_and_optimizer(width=2048)
        saver.restore(model=check)
        assert same_tensors(check.state_dict(), snapshot), "the save must hold the snapshot"
    assert min(stalls) < min(sync_times) / 2, (stalls, sync_times)

    saved = [e for e in read_events(status_dir) if e["type"] == "checkpoint_saved"]
    assert {e["mode"] for e in saved} == {"sync", "async"}
    assert all(e["stall_s"] < e["duration_s"] for e in saved if e["mode"] == "async")


def test_second_async_save_waits_for_the_first(
    make_ckpt: MakeCkpt, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = model_and_optimizer()
    saver = ckpt_torch.TorchCheckpointer(make_ckpt())
    gates = [threading.Event(), threading.Event()]  # one per save, opened by the test
    calls: list[int] = []
    real_save = torch.save

    def slow_save(obj: Any, f: Any) -> None:
        calls.append(len(calls))
        gates[calls[-1]].wait(timeout=10)
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", slow_save)
    saver.save(1, model=model, blocking=False)
    assert saver.pending
    threading.Timer(0.2, gates[0].set).start()
    started = time.perf_counter()
    saver.save(2, model=model, blocking=False)  # must wait for step 1 to be committed
    assert time.perf_counter() - started >= 0.15
    assert [s for s, _ in saver.checkpointer.checkpoints()] == [1]
    gates[1].set()
    saver.wait()
    assert [s for s, _ in saver.checkpointer.checkpoints()] == [1, 2]


def test_background_failure_is_raised_by_wait(
    make_ckpt: MakeCkpt, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = model_and_optimizer()
    saver = ckpt_torch.TorchCheckpointer(make_ckpt())

    def broken(obj: Any, f: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    saver.save(1, model=model, blocking=False)
    with pytest.raises(CheckpointError, match="disk full"):
        saver.wait()
    assert saver.wait() is None  # reported once
    assert saver.checkpointer.checkpoints() == []


def test_exit_for_requeue_finishes_the_save_in_flight(make_ckpt: MakeCkpt) -> None:
    model, _ = model_and_optimizer()
    saver = ckpt_torch.TorchCheckpointer(make_ckpt())
    saver.save(7, model=model, blocking=False)
    with pytest.raises(SystemExit) as exited:
        saver.checkpointer.exit_for_requeue()
    assert exited.value.code == 75
    assert not saver.pending
    assert [s for s, _ in saver.checkpointer.checkpoints()] == [7]


def test_extra_that_is_not_json_is_refused_before_anything_starts(make_ckpt: MakeCkpt) -> None:
    model, _ = model_and_optimizer()
    saver = ckpt_torch.TorchCheckpointer(make_ckpt())
    with pytest.raises(ValueError):
        saver.save(1, model=model, extra={"loss": float("nan")}, blocking=False)
    assert not saver.pending and saver.checkpointer.checkpoints() == []
