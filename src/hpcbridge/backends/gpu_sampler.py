"""GPU utilisation of a running job (M6), sampled beside it through NVML.

Runs next to the job (the Slurm batch script starts it in the background with the node's
own ``python3``), so it uses only the standard library and never imports hpcbridge: NVML
through ``pynvml`` when the node has it, else through ``nvidia-smi`` (NVML's own CLI).
Every ``interval`` seconds it appends ``{"type": "gpu_sample", "time": T, "utilization": U}``
(U in 0..1, the mean over the job's GPUs) to ``events.jsonl`` in the status directory, and
it stops by itself when the job's script (its parent) is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

INTERVAL_S = 10.0
EVENT = "gpu_sample"


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """The job's GPUs as NVML indices or UUIDs, from CUDA_VISIBLE_DEVICES (Slurm sets it)."""
    raw = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES", "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def _with_pynvml(gpus: Sequence[str]) -> list[float] | None:
    try:
        import pynvml  # type: ignore[import-not-found]  # noqa: PLC0415 (optional on nodes)
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            values = []
            for gpu in gpus:
                handle: Any = (
                    pynvml.nvmlDeviceGetHandleByIndex(int(gpu))
                    if gpu.isdigit()
                    else pynvml.nvmlDeviceGetHandleByUUID(gpu)
                )
                values.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            return values
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML present but unusable here: try the CLI
        return None


def _with_nvidia_smi(gpus: Sequence[str]) -> list[float] | None:
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    argv = [tool, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
    if gpus:
        argv.append(f"--id={','.join(gpus)}")
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
        return [float(line) for line in out.stdout.split() if line.strip()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def sample(gpus: Sequence[str]) -> float | None:
    """Mean utilisation of ``gpus`` in 0..1, or None when no NVML answers."""
    values = _with_pynvml(gpus) if gpus else None
    if values is None:
        values = _with_nvidia_smi(gpus)
    if not values:
        return None
    return min(1.0, max(0.0, sum(values) / len(values) / 100.0))


def append_sample(status_dir: Path, utilization: float, now: float) -> None:
    event = {"type": EVENT, "time": now, "utilization": round(utilization, 4)}
    line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
    status_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(status_dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(
    status_dir: Path,
    interval_s: float = INTERVAL_S,
    rounds: int | None = None,
    *,
    watch: int | None = None,
) -> int:
    """Sample while the job's script (``watch``, default our parent) lives, or ``rounds``
    times; an orphan from the start (the script already gone) takes no sample."""
    parent = os.getppid()
    watched = watch if watch is not None else parent
    gpus = visible_gpus()
    taken = 0
    while rounds is None or taken < rounds:
        if watched <= 1 or not _alive(watched) or os.getppid() != parent:
            break  # the job ended: its script is gone
        value = sample(gpus)
        if value is not None:
            append_sample(status_dir, value, time.time())
        taken += 1
        time.sleep(interval_s)
    return taken


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: gpu_sampler STATUS_DIR [INTERVAL_S [PID]]", file=sys.stderr)
        return 2
    try:
        interval = float(argv[1]) if len(argv) > 1 else INTERVAL_S
        watch = int(argv[2]) if len(argv) > 2 else None
        run(Path(argv[0]), interval, watch=watch)
    except (OSError, ValueError) as exc:
        print(f"hpcbridge GPU sampler stopped: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
