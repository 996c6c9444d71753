"""Benchmark of the checkpoint SDK; prints one JSON object.

- ``write_ratio``: plain ``write`` + ``fsync`` time / SDK save time for the same bytes, i.e.
  the SDK's write throughput as a fraction of the baseline's (1.0 = as fast; the SDK also
  hashes, writes a manifest and renames), from the medians of interleaved runs;
  ``write_ratio_best`` from the fastest runs, which is steadier when other work shares the
  machine. ``*_cpu_s`` is process CPU time, which shows the hashing cost whatever the load.
- ``write_ratio_with_blake3`` / ``write_ratio_without_blake3``: the same measurement in this
  process (where ``blake3`` is installed) and in a child process that cannot import
  ``blake3``, each against its own baseline measured in that process; the child's figures
  are under ``without_blake3``. ``write_ratio_with_blake3`` is null where ``blake3`` is not
  installed here. Both hash with SHA-256 (``algorithm``), which costs about four times the
  CPU of the plain write (compare ``sdk_cpu_s`` and ``plain_cpu_s``): the ratios reach 1.0
  only where the hashing threads find idle cores, so read them with ``load_average_1m``.
- ``by_path_write_ratio``: the same when the job writes the file by path, so the SDK hashes
  it at commit (read back from the page cache, overlapped with the fsync).
- ``verify_GBps``: full checksum verification by ``latest_valid()``, file cache dropped
  first; ``verify_warm_GBps`` with the file cached.
- ``async_stall_ratio``: training stall of an asynchronous torch save / synchronous save
  time (null with ``async_stall_reason`` when torch is missing).

    python bench/checkpoint.py [--size-mib 512] [--repeat 7] [--torch-mib 256] [--dir D]

``--size`` is an alias of ``--size-mib``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint import Checkpointer
from hpcbridge.checkpoint._fsutil import drop_cache
from hpcbridge.checkpoint.torch import TorchCheckpointer  # imports torch only when used

GB = 1e9
CHUNK = 64 << 20


def random_bytes(size: int) -> memoryview:
    """Incompressible content, so that no layer below can shortcut the writes."""
    buffer = bytearray(size)
    for start in range(0, size, CHUNK):
        end = min(size, start + CHUNK)
        buffer[start:end] = os.urandom(end - start)
    return memoryview(buffer)


def timed(action: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - started


def settle() -> None:
    """Start each run with no dirty pages left over from the previous one."""
    os.sync()
    time.sleep(0.2)


def plain_write(path: Path, data: memoryview) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for start in range(0, len(data), CHUNK):
            piece = data[start : start + CHUNK]
            while piece:
                piece = piece[os.write(fd, piece) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def sdk_streamed(directory: Path, data: memoryview) -> None:
    ckpt = Checkpointer(directory, keep=1, interval=3600)
    with ckpt.save(1) as session, session.open("blob.bin") as f:
        for start in range(0, len(data), CHUNK):
            f.write(data[start : start + CHUNK])


def sdk_by_path(directory: Path, data: memoryview) -> None:
    ckpt = Checkpointer(directory, keep=1, interval=3600)
    with ckpt.save(1) as session, open(session / "blob.bin", "wb") as f:
        for start in range(0, len(data), CHUNK):
            f.write(data[start : start + CHUNK])


WRITERS: dict[str, Callable[[Path, memoryview], None]] = {
    "plain": plain_write,
    "sdk": sdk_streamed,
    "by_path": sdk_by_path,
}


def measure_writes(root: Path, data: memoryview, repeat: int) -> dict[str, Any]:
    kinds = ["plain", "sdk", "by_path"]
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    warm_up = root / "warm-up"
    plain_write(warm_up, data)  # first touch of this much page cache is slow for anyone
    warm_up.unlink()
    for index in range(repeat):
        # Interleaved, and rotated so no kind always runs right after another's deletion.
        for kind in kinds[index % 3 :] + kinds[: index % 3]:
            target = root / f"{kind}-{index}"
            settle()
            cpu_before = time.process_time()
            runs[kind].append(timed(WRITERS[kind], target, data))
            cpu[kind].append(time.process_time() - cpu_before)
            if not (kind == "sdk" and index == repeat - 1):  # kept for the verify test
                remove(target)
    median = {kind: statistics.median(runs[kind]) for kind in kinds}
    best = {kind: min(runs[kind]) for kind in kinds}
    return {
        "plain_write_fsync_s": median["plain"],
        "plain_runs_s": runs["plain"],
        "plain_cpu_s": statistics.median(cpu["plain"]),
        "plain_GBps": len(data) / median["plain"] / GB,
        "sdk_save_s": median["sdk"],
        "sdk_runs_s": runs["sdk"],
        "sdk_cpu_s": statistics.median(cpu["sdk"]),
        "sdk_GBps": len(data) / median["sdk"] / GB,
        "write_ratio": median["plain"] / median["sdk"],
        "write_ratio_best": best["plain"] / best["sdk"],
        "sdk_by_path_save_s": median["by_path"],
        "sdk_by_path_runs_s": runs["by_path"],
        "sdk_by_path_cpu_s": statistics.median(cpu["by_path"]),
        "by_path_write_ratio": median["plain"] / median["by_path"],
        "by_path_write_ratio_best": best["plain"] / best["by_path"],
        "load_average_1m": os.getloadavg()[0],
    }


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def measure_verify(directory: Path, size: int) -> dict[str, Any]:
    ckpt = Checkpointer(directory)
    found = ckpt.latest_valid(verify="size")
    assert found is not None
    for name in found.files:
        drop_cache(found.file(name))
    cold = timed(ckpt.latest_valid, verify="full")
    warm = timed(ckpt.latest_valid, verify="full")
    return {
        "verify_s": cold,
        "verify_GBps": size / cold / GB,
        "verify_warm_s": warm,
        "verify_warm_GBps": size / warm / GB,
    }


def measure_torch(root: Path, size_mib: int, repeat: int) -> dict[str, Any]:
    try:
        torch: Any = importlib.import_module("torch")
    except ImportError:
        return {"async_stall_ratio": None, "async_stall_reason": "torch is not installed"}
    torch.manual_seed(0)
    width = 1024
    layers = max(1, (size_mib << 20) // (width * width * 4))
    model = torch.nn.Sequential(*(torch.nn.Linear(width, width) for _ in range(layers)))
    model_bytes = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    saver = TorchCheckpointer(Checkpointer(root / "torch", keep=2, interval=3600))
    saver.save(0, model=model)  # warm-up: allocation, page cache, host buffers
    saver.save(1, model=model, blocking=False)
    saver.wait()
    sync, stall, total = [], [], []
    for step in range(2, 2 + repeat):
        settle()
        sync.append(timed(saver.save, step, model=model))
    for step in range(2 + repeat, 2 + 2 * repeat):
        settle()
        started = time.perf_counter()
        saver.save(step, model=model, blocking=False)
        stall.append(time.perf_counter() - started)
        saver.wait()
        total.append(time.perf_counter() - started)
    return {
        "torch_version": str(torch.__version__),
        "torch_model_bytes": model_bytes,
        "torch_sync_save_s": statistics.median(sync),
        "torch_async_stall_s": statistics.median(stall),
        "torch_async_total_s": statistics.median(total),
        "async_stall_ratio": statistics.median(stall) / statistics.median(sync),
        "async_stall_reason": None,
    }


BLOCK_BLAKE3 = """
import runpy, sys
sys.modules["blake3"] = None  # before hpcbridge.checkpoint is imported: `import blake3` fails
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def blake3_importable() -> bool:
    try:
        importlib.import_module("blake3")
    except ImportError:
        return False
    return True


def measure_writes_without_blake3(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """The write measurement again, in a child process that cannot import ``blake3``."""
    command = [sys.executable, "-c", BLOCK_BLAKE3, __file__, "--writes-only"]
    command += ["--size-mib", str(args.size_mib), "--repeat", str(args.repeat)]
    command += ["--dir", str(scratch)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    child: dict[str, Any] = json.loads(done.stdout)
    if child["blake3_installed"]:
        raise RuntimeError("the child process meant to run without blake3 imported it")
    return child


def writes_only(size: int, repeat: int, scratch: Path | None) -> dict[str, Any]:
    data = random_bytes(size)
    root = Path(tempfile.mkdtemp(prefix="ckpt-bench-", dir=scratch))
    try:
        result: dict[str, Any] = {
            "blake3_installed": blake3_importable(),
            "algorithm": Checkpointer(root / "probe").algorithm,
        }
        result |= measure_writes(root, data, repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the checkpoint SDK.")
    parser.add_argument("--size-mib", "--size", dest="size_mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--torch-mib", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None, help="scratch space (default: temp)")
    parser.add_argument("--writes-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    size = args.size_mib << 20
    if args.writes_only:  # the child of measure_writes_without_blake3
        json.dump(writes_only(size, args.repeat, args.dir), sys.stdout)
        sys.stdout.write("\n")
        return 0

    root = Path(tempfile.mkdtemp(prefix="ckpt-bench-", dir=args.dir))
    try:
        # First, so that the two processes never hold their data at the same time.
        without = measure_writes_without_blake3(args, root)
        installed = blake3_importable()
        data = random_bytes(size)
        result: dict[str, Any] = {
            "size_bytes": size,
            "algorithm": Checkpointer(root / "probe").algorithm,
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "blake3_installed": installed,
        }
        result |= measure_writes(root, data, args.repeat)
        result["write_ratio_with_blake3"] = result["write_ratio"] if installed else None
        result["write_ratio_without_blake3"] = without["write_ratio"]
        result["without_blake3"] = without
        result |= measure_verify(root / f"sdk-{args.repeat - 1}", size)
        del data
        result |= measure_torch(root, args.torch_mib, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
