"""Asynchronous checkpoint of a bf16 state dict on a GPU: stall, persist time, training impact.

Needs torch with CUDA and an NVIDIA GPU. Prints one JSON object (progress goes to stderr):

- ``torch_save_fsync_s``: synchronous ``torch.save`` of the state dict to a file + fsync.
- ``hpcbridge_async_stall_s``: how long ``TorchCheckpointer.save(blocking=False)`` keeps the
  caller waiting (the copy into reusable pinned host buffers); ``hpcbridge_async_persisted_s``
  until the checkpoint is committed (serialised, hashed, fsynced, renamed).
- ``dcp_async_stall_s``: the same for ``torch.distributed.checkpoint.async_save`` with its
  defaults; ``dcp_pinned_stall_s`` with a reused pinned-memory ``DefaultStager`` (the
  fastest staging dcp offers, closest to what hpcbridge does). Null with a ``*_reason`` where
  this torch lacks them or they fail.
- ``train_steps_per_s_alone``: a matmul-heavy training loop on the GPU (one synchronisation
  per step, as reading the loss would do), before and after the saves;
  ``train_steps_per_s_during_write``: the same loop between the return of the asynchronous
  save and the commit of the checkpoint.
- Ratios ``stall_vs_torch_save``, ``stall_vs_dcp_async``, ``throughput_during_write_ratio``
  and ``targets``, ``meets_targets``. Medians over ``--repeat`` runs, after one warm-up run
  of each asynchronous kind (its figures are reported as ``*_first_*``: allocation of the
  host buffers).

    python bench/gpu_checkpoint.py [--size-gib 4] [--dir D] [--steps 200] [--repeat 3]
    python bench/gpu_checkpoint.py --device cpu --size-gib 0.05     # smoke test, no GPU

Exit status: 0 when every target is met (always 0 for ``--device cpu``), 1 when one is
missed, 2 when the machine cannot run the check (no torch, no CUDA device, no disk space).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint import Checkpointer
from hpcbridge.checkpoint.torch import TorchCheckpointer  # imports torch only when used

GIB = 1 << 30
NO_DEVICE = 2
TENSOR_COLUMNS = 4096
TENSOR_BYTES_MAX = 64 << 20
"""The state dict is split into tensors of at most this size, like the weights of a model."""
CPU_SIZE_GIB_MAX = 0.5
TARGETS = {
    "stall_vs_torch_save_max": 0.05,
    "stall_vs_dcp_async_max": 1.0,
    "throughput_during_write_ratio_min": 0.9,
}
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


class UnavailableError(Exception):
    """This machine cannot run the check; the message says why."""


def progress(message: str) -> None:
    print(f"[gpu_checkpoint] {message}", file=sys.stderr, flush=True)


def load_torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise UnavailableError(
            f"torch cannot be imported ({exc}); install a CUDA build of torch to run this check"
        ) from exc


def check_device(torch: Any, device: str, size_gib: float) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise UnavailableError(
            f"no CUDA device: this check needs an NVIDIA GPU and torch built with CUDA "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). For a smoke test "
            "of the same code on CPU: --device cpu --size-gib 0.05"
        )
    if device == "cpu" and size_gib > CPU_SIZE_GIB_MAX:
        raise UnavailableError(
            f"--device cpu is a smoke test; use --size-gib {CPU_SIZE_GIB_MAX} or less "
            f"(got {size_gib})"
        )


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (longest mount point prefix)."""
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, fields[2]
    except OSError:
        return None
    return kind


def scratch_parent(requested: Path | None) -> Path:
    """``--dir``, else the temp dir, else /var/tmp when the temp dir lives in memory."""
    if requested is not None:
        requested.mkdir(parents=True, exist_ok=True)
        return requested
    default = Path(tempfile.gettempdir())
    fallback = Path("/var/tmp")
    if (
        filesystem_type(default) in MEMORY_FILESYSTEMS
        and fallback.is_dir()
        and filesystem_type(fallback) not in MEMORY_FILESYSTEMS
    ):
        return fallback
    return default


def check_space(parent: Path, size_bytes: int) -> None:
    # One checkpoint being written while the previous one is kept, plus headroom.
    needed = 3 * size_bytes + (256 << 20)
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise UnavailableError(
            f"{parent} has {free / GIB:.1f} GiB free; this check needs about "
            f"{needed / GIB:.1f} GiB: pass --dir on a larger local disk or a smaller --size-gib"
        )


def make_state(torch: Any, device: str, size_bytes: int) -> dict[str, Any]:
    """bf16 tensors of ``TENSOR_COLUMNS`` columns, at most ``TENSOR_BYTES_MAX`` each."""
    element = 2
    rows_total = max(1, size_bytes // (element * TENSOR_COLUMNS))
    rows_max = TENSOR_BYTES_MAX // (element * TENSOR_COLUMNS)
    state: dict[str, Any] = {}
    index = 0
    while rows_total > 0:
        rows = min(rows_max, rows_total)
        state[f"layers.{index}.weight"] = torch.randn(
            rows, TENSOR_COLUMNS, device=device, dtype=torch.bfloat16
        )
        rows_total -= rows
        index += 1
    return state


def state_bytes(state: dict[str, Any]) -> int:
    return sum(int(t.numel()) * int(t.element_size()) for t in state.values())


class Weights:
    """What ``TorchCheckpointer.save(model=...)`` needs: an object with ``state_dict()``."""

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


class Trainer:
    """A matmul-heavy training step: chained bf16 matmuls, synchronised once per step."""

    def __init__(self, torch: Any, device: str, width: int, matmuls: int) -> None:
        self._torch = torch
        self._cuda = device == "cuda"
        self.width = width
        self.matmuls = matmuls
        self._x = torch.randn(width, width, device=device, dtype=torch.bfloat16)
        self._w = torch.randn(width, width, device=device, dtype=torch.bfloat16)
        self._w /= math.sqrt(width)

    @property
    def flops_per_step(self) -> float:
        return 2.0 * self.width**3 * self.matmuls

    def sync(self) -> None:
        if self._cuda:
            self._torch.cuda.synchronize()

    def step(self) -> None:
        x = self._x
        for _ in range(self.matmuls):
            x = self._torch.tanh(x @ self._w)
        self.sync()

    def run_steps(self, steps: int) -> float:
        """Steps per second over ``steps`` steps."""
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        return steps / (time.perf_counter() - started)

    def run_while(self, busy: Callable[[], bool]) -> tuple[int, float]:
        """Steps while ``busy()`` holds: (steps, seconds)."""
        started = time.perf_counter()
        steps = 0
        while busy():
            self.step()
            steps += 1
        return steps, time.perf_counter() - started


def settle() -> None:
    """Start each save with no dirty pages left over from the previous one."""
    os.sync()
    time.sleep(0.2)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def measure_torch_save(
    torch: Any, state: dict[str, Any], root: Path, repeat: int, trainer: Trainer
) -> dict[str, Any]:
    runs: list[float] = []
    for index in range(repeat):
        target = root / f"torch-save-{index}.pt"
        settle()
        trainer.sync()
        started = time.perf_counter()
        with open(target, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        runs.append(time.perf_counter() - started)
        remove(target)
        progress(f"torch.save + fsync: {runs[-1]:.3f} s")
    return {"torch_save_fsync_s": median(runs), "torch_save_fsync_runs_s": runs}


class WriteWindows:
    """Training steps run between the return of asynchronous saves and their commit."""

    def __init__(self) -> None:
        self.steps = 0
        self.seconds = 0.0

    def add(self, steps: int, seconds: float) -> None:
        self.steps += steps
        self.seconds += seconds

    @property
    def rate(self) -> float | None:
        return self.steps / self.seconds if self.steps and self.seconds > 0 else None


def measure_hpcbridge(
    state: dict[str, Any], root: Path, repeat: int, trainer: Trainer, windows: WriteWindows
) -> dict[str, Any]:
    checkpointer = Checkpointer(root / "hpcbridge", keep=1, interval=3600, environ={})
    saver = TorchCheckpointer(checkpointer)
    weights = Weights(state)
    stalls: list[float] = []
    persisted: list[float] = []
    first: tuple[float, float] | None = None
    for step in range(repeat + 1):
        settle()
        trainer.sync()
        started = time.perf_counter()
        saver.save(step, model=weights, blocking=False)
        stall = time.perf_counter() - started
        steps, seconds = trainer.run_while(lambda: saver.pending)
        saver.wait()
        total = time.perf_counter() - started
        if step == 0:
            first = (stall, total)  # allocates the pinned host buffers
        else:
            stalls.append(stall)
            persisted.append(total)
            windows.add(steps, seconds)
        progress(f"hpcbridge async save: stall {stall:.3f} s, persisted {total:.3f} s")
    return {
        "hpcbridge_async_stall_s": median(stalls),
        "hpcbridge_async_stall_runs_s": stalls,
        "hpcbridge_async_persisted_s": median(persisted),
        "hpcbridge_async_persisted_runs_s": persisted,
        "hpcbridge_async_first_stall_s": first[0] if first else None,
        "hpcbridge_async_first_persisted_s": first[1] if first else None,
        "hpcbridge_hash_algorithm": checkpointer.algorithm,
    }


class Dcp:
    """``torch.distributed.checkpoint.async_save`` in this single process."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch
        self.process_group: str | None = None
        self._owns_group = False
        try:
            self.dcp: Any = importlib.import_module("torch.distributed.checkpoint")
        except ImportError as exc:
            raise UnavailableError(
                f"torch.distributed.checkpoint cannot be imported: {exc}"
            ) from exc
        self.async_save: Any = getattr(self.dcp, "async_save", None)
        if self.async_save is None:
            raise UnavailableError(
                f"torch {torch.__version__} has no torch.distributed.checkpoint.async_save"
            )

    def start(self, state: dict[str, Any], target: Path, **options: Any) -> Any:
        """Start a save; a process group of size 1 is created if this torch needs one."""
        try:
            return self.async_save(state, checkpoint_id=str(target), **options)
        except Exception:
            dist = self._torch.distributed
            if self.process_group is not None or not dist.is_available():
                raise
            if not dist.is_initialized():
                dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
                self._owns_group = True
            self.process_group = str(dist.get_backend())
            remove(target)
            return self.async_save(state, checkpoint_id=str(target), **options)

    def close(self) -> None:
        if self._owns_group:
            self._torch.distributed.destroy_process_group()
            self._owns_group = False


def _completion(started: Any) -> Any:
    """The future that completes once the checkpoint is written (a Future or a response)."""
    return getattr(started, "upload_completion", started)


def _pending(future: Any) -> Callable[[], bool]:
    return lambda: not future.done()


def measure_dcp(
    dcp: Dcp,
    prefix: str,
    state: dict[str, Any],
    root: Path,
    repeat: int,
    trainer: Trainer,
    options: dict[str, Any],
) -> dict[str, Any]:
    stalls: list[float] = []
    persisted: list[float] = []
    windows = WriteWindows()
    first: tuple[float, float] | None = None
    for index in range(repeat + 1):
        target = root / f"{prefix}-{index}"
        settle()
        trainer.sync()
        started = time.perf_counter()
        done = _completion(dcp.start(state, target, **options))
        stall = time.perf_counter() - started
        steps, seconds = trainer.run_while(_pending(done))
        done.result()
        total = time.perf_counter() - started
        remove(target)
        if index == 0:
            first = (stall, total)
        else:
            stalls.append(stall)
            persisted.append(total)
            windows.add(steps, seconds)
        progress(f"{prefix}: stall {stall:.3f} s, persisted {total:.3f} s")
    return {
        f"{prefix}_stall_s": median(stalls),
        f"{prefix}_stall_runs_s": stalls,
        f"{prefix}_persisted_s": median(persisted),
        f"{prefix}_persisted_runs_s": persisted,
        f"{prefix}_first_stall_s": first[0] if first else None,
        f"{prefix}_first_persisted_s": first[1] if first else None,
        f"{prefix}_train_steps_per_s_during_write": windows.rate,
        f"{prefix}_reason": None,
    }


def pinned_stager(torch: Any) -> Any:
    staging = importlib.import_module("torch.distributed.checkpoint.staging")
    if not hasattr(staging, "DefaultStager") or not hasattr(staging, "StagingOptions"):
        raise UnavailableError(f"torch {torch.__version__} has no DefaultStager")
    options = staging.StagingOptions(
        use_pinned_memory=True,
        use_shared_memory=False,
        use_async_staging=False,
        use_non_blocking_copy=True,
    )
    return staging.DefaultStager(options)


def measure_all_dcp(
    torch: Any, device: str, state: dict[str, Any], root: Path, repeat: int, trainer: Trainer
) -> dict[str, Any]:
    result: dict[str, Any] = {"dcp_process_group": None}
    try:
        dcp = Dcp(torch)
    except UnavailableError as exc:
        return result | {"dcp_async_stall_s": None, "dcp_async_reason": str(exc)}
    try:
        try:
            result |= measure_dcp(dcp, "dcp_async", state, root, repeat, trainer, {})
        except Exception as exc:
            result |= {"dcp_async_stall_s": None, "dcp_async_reason": _describe(exc)}
        if device != "cuda":
            result |= {
                "dcp_pinned_stall_s": None,
                "dcp_pinned_reason": "pinned staging needs a CUDA device",
            }
        else:
            stager = None
            try:
                stager = pinned_stager(torch)
                options = {"async_stager": stager}
                result |= measure_dcp(dcp, "dcp_pinned", state, root, repeat, trainer, options)
            except Exception as exc:
                result |= {"dcp_pinned_stall_s": None, "dcp_pinned_reason": _describe(exc)}
            finally:
                if stager is not None:
                    stager.close()
        result["dcp_process_group"] = dcp.process_group
    finally:
        dcp.close()
    return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def device_name(torch: Any, device: str) -> str:
    if device == "cuda":
        return str(torch.cuda.get_device_name(0))
    return f"cpu ({platform.processor() or platform.machine()}, smoke test)"


def verdicts(result: dict[str, Any]) -> dict[str, bool | None]:
    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    def at_least(value: float | None, limit: float) -> bool | None:
        return None if value is None else value >= limit

    return {
        "stall_vs_torch_save": at_most(
            result["stall_vs_torch_save"], TARGETS["stall_vs_torch_save_max"]
        ),
        "stall_vs_dcp_async": at_most(
            result["stall_vs_dcp_async"], TARGETS["stall_vs_dcp_async_max"]
        ),
        "throughput_during_write_ratio": at_least(
            result["throughput_during_write_ratio"], TARGETS["throughput_during_write_ratio_min"]
        ),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch = load_torch()
    check_device(torch, args.device, args.size_gib)
    size_bytes = int(args.size_gib * GIB)
    parent = scratch_parent(args.dir)
    check_space(parent, size_bytes)
    width = args.width or (8192 if args.device == "cuda" else 256)
    torch.manual_seed(0)
    state = make_state(torch, args.device, size_bytes)
    trainer = Trainer(torch, args.device, width, args.matmuls)
    root = Path(tempfile.mkdtemp(prefix="gpu-ckpt-bench-", dir=parent))
    fs_type = filesystem_type(root)
    result: dict[str, Any] = {
        "device": device_name(torch, args.device),
        "device_kind": args.device,
        "torch_version": str(torch.__version__),
        "cuda_version": torch.version.cuda,
        "size_bytes": state_bytes(state),
        "tensors": len(state),
        "dtype": "bfloat16",
        "dir": str(root),
        "fs_type": fs_type,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "train_width": width,
        "train_matmuls_per_step": args.matmuls,
        "warnings": [],
    }
    if fs_type in MEMORY_FILESYSTEMS:
        result["warnings"].append(
            f"{root} is on {fs_type}: fsync is a no-op there, so the figures do not include "
            "a disk; pass --dir on a local disk"
        )
    try:
        progress(f"{result['device']}, {result['size_bytes'] / GIB:.2f} GiB, in {root}")
        trainer.run_steps(max(3, args.steps // 10))  # warm-up: kernels, cuBLAS workspace
        alone = [trainer.run_steps(args.steps)]
        progress(f"training alone: {alone[0]:.1f} steps/s")
        result |= measure_torch_save(torch, state, root, args.repeat, trainer)
        windows = WriteWindows()
        result |= measure_hpcbridge(state, root, args.repeat, trainer, windows)
        result |= measure_all_dcp(torch, args.device, state, root, args.repeat, trainer)
        alone.append(trainer.run_steps(args.steps))
        progress(f"training alone, again: {alone[1]:.1f} steps/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    alone_rate = statistics.fmean(alone)
    result |= {
        "train_steps_per_s_alone": alone_rate,
        "train_steps_per_s_alone_runs": alone,
        "train_tflops_alone": alone_rate * trainer.flops_per_step / 1e12,
        "train_steps_per_s_during_write": windows.rate,
        "train_steps_during_write": windows.steps,
        "write_window_s": windows.seconds,
    }
    stall = result["hpcbridge_async_stall_s"]
    result |= {
        "stall_vs_torch_save": ratio(stall, result["torch_save_fsync_s"]),
        "stall_vs_dcp_async": ratio(stall, result.get("dcp_async_stall_s")),
        "stall_vs_dcp_pinned": ratio(stall, result.get("dcp_pinned_stall_s")),
        "throughput_during_write_ratio": ratio(windows.rate, alone_rate),
        "dcp_throughput_during_write_ratio": ratio(
            result.get("dcp_async_train_steps_per_s_during_write"), alone_rate
        ),
        "targets": TARGETS,
    }
    result["meets_targets"] = verdicts(result)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Stall and training impact of asynchronous checkpoints on a GPU."
    )
    parser.add_argument("--size-gib", type=float, default=4.0, help="state dict size (bf16)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch space on a local disk")
    parser.add_argument("--steps", type=int, default=200, help="training steps per rate")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each save kind")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--width", type=int, default=0, help="matmul size (default by device)")
    parser.add_argument("--matmuls", type=int, default=4, help="matmuls per training step")
    args = parser.parse_args(argv)
    if args.size_gib <= 0 or args.steps < 1 or args.repeat < 1 or args.matmuls < 1:
        parser.error("--size-gib, --steps, --repeat and --matmuls must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except UnavailableError as exc:
        print(f"gpu_checkpoint: cannot run here: {exc}", file=sys.stderr)
        return NO_DEVICE
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    if args.device != "cuda":
        return 0
    return 0 if all(v is True for v in result["meets_targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
