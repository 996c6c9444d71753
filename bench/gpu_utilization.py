"""A GPU job through the local executor, and the GPU utilisation hpcbridge records for it.

Needs an NVIDIA GPU, torch with CUDA, and (for the reference readings) nvidia-ml-py. The
script submits a job of ``--seconds`` (default 20) of bf16 matmuls with
``resources: {gpus: 1}`` through the embedded ``Client`` in a temporary home, drives the
reconciler until it ends, and prints one JSON object (progress goes to stderr):

- ``job_state``, ``job_reason``, ``job_report`` (what the job itself printed: device,
  ``CUDA_VISIBLE_DEVICES``, matmuls, TFLOPS), ``attempt_dir``, ``gpu_ids`` (given to it).
- ``gpu_samples``: the ``gpu_sample`` events found in the attempt's ``events.jsonl`` (what
  the job side records from NVML) and ``latest_gpu_utilization`` as the collector reads it.
- ``metric``: ``hpcbridge_gpu_utilization_ratio`` from a ``StoreCollector`` scraped about
  once a second while the job ran (``metric_values``, ``metric_last``).
- ``nvml_reference``: this script's own NVML readings of the job's GPU over the same time,
  to compare with what hpcbridge recorded.
- ``problems``: what is missing (empty when the utilisation was recorded and exported).

    python bench/gpu_utilization.py [--seconds 20] [--dir D]
    python bench/gpu_utilization.py --device cpu --seconds 3     # smoke test, no GPU

Exit status: 0 when ``problems`` is empty, 1 otherwise, 2 when there is no GPU. With
``--device cpu`` the local executor is given one pretend GPU slot and the job multiplies on
the CPU: a test of this script's plumbing only (0 when the job succeeded).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hpcbridge.backends import available_backends
from hpcbridge.backends.local._capacity import detect_gpus
from hpcbridge.backends.local._process import STDERR_FILE, STDOUT_FILE, read_gpu_ids
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.spec import load_spec_document
from hpcbridge.states import JobState
from hpcbridge.store import Attempt
from hpcbridge.telemetry import StoreCollector, latest_gpu_utilization, read_status_events
from hpcbridge.telemetry._names import GPU_UTILIZATION
from hpcbridge.telemetry._status import EVENTS_FILE, GPU_SAMPLE

NO_DEVICE = 2
SCRAPE_EVERY_S = 1.0
STDERR_TAIL = 2000

# The job: bf16 matmuls for a given time, then one JSON line on stdout.
JOB = """\
import json, os, sys, time
import torch
device, seconds = sys.argv[1], float(sys.argv[2])
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("no CUDA device visible to the job, CUDA_VISIBLE_DEVICES=%r"
             % os.environ.get("CUDA_VISIBLE_DEVICES"))
width = 8192 if device == "cuda" else 256
a = torch.randn(width, width, device=device, dtype=torch.bfloat16)
b = torch.randn(width, width, device=device, dtype=torch.bfloat16) / width**0.5
started = time.perf_counter()
matmuls = 0
while time.perf_counter() - started < seconds:
    for _ in range(16):
        c = a @ b
    matmuls += 16
    if device == "cuda":
        torch.cuda.synchronize()
elapsed = time.perf_counter() - started
print(json.dumps({
    "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "seconds": elapsed,
    "matmuls": matmuls,
    "tflops": 2 * width**3 * matmuls / elapsed / 1e12,
}), flush=True)
"""


class UnavailableError(Exception):
    """This machine cannot run the check; the message says why."""


def progress(message: str) -> None:
    print(f"[gpu_utilization] {message}", file=sys.stderr, flush=True)


def check_machine(device: str) -> None:
    if "local" not in available_backends():
        raise UnavailableError(
            "hpcbridge's backends are not registered: install hpcbridge (pip install -e . or "
            "its wheel), not only src/ on PYTHONPATH"
        )
    try:
        torch: Any = importlib.import_module("torch")
    except ImportError as exc:
        raise UnavailableError(
            f"torch cannot be imported ({exc}); the job needs a CUDA build of torch"
        ) from exc
    if device != "cuda":
        return
    if not torch.cuda.is_available():
        raise UnavailableError(
            f"no CUDA device: this check needs an NVIDIA GPU and torch built with CUDA "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). For a smoke test "
            "of the plumbing: --device cpu --seconds 3"
        )
    if detect_gpus() < 1:
        raise UnavailableError(
            "torch sees a GPU but the local executor counts none (it asks `nvidia-smi -L`); "
            "put nvidia-smi on PATH"
        )


class Nvml:
    """Utilisation readings of one GPU through NVML (nvidia-ml-py's ``pynvml``)."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.name: str | None = None
        self.samples: list[dict[str, float]] = []
        self._handles: dict[int, Any] = {}
        try:
            self._nvml: Any = importlib.import_module("pynvml")
            self._nvml.nvmlInit()
        except Exception as exc:  # ImportError, or NVMLError when no driver
            self._nvml = None
            self.error = f"NVML unavailable ({type(exc).__name__}: {exc}); pip install nvidia-ml-py"

    def sample(self, index: int, at: float) -> None:
        if self._nvml is None:
            return
        try:
            handle = self._handles.get(index)
            if handle is None:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
                self._handles[index] = handle
                name = self._nvml.nvmlDeviceGetName(handle)
                self.name = name.decode() if isinstance(name, bytes) else str(name)
            rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.samples.append({"t": at, "gpu_index": index, "utilization": rates.gpu / 100.0})

    def summary(self) -> dict[str, Any]:
        values = [s["utilization"] for s in self.samples]
        return {
            "gpu_name": self.name,
            "samples": self.samples,
            "mean": sum(values) / len(values) if values else None,
            "max": max(values) if values else None,
            "error": self.error,
        }

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception as exc:
                self.error = self.error or f"{type(exc).__name__}: {exc}"


class Watcher:
    """Called after each reconciler cycle: scrapes the collector and reads NVML, ~1/s."""

    def __init__(self, client: Client, job_id: str, nvml: Nvml | None, t0: float) -> None:
        self._client = client
        self._job_id = job_id
        self._collector = StoreCollector(client.store)
        self._nvml = nvml
        self._t0 = t0
        self._next = 0.0
        self.scrapes = 0
        self.scrapes_while_running = 0
        self.metric_values: list[dict[str, Any]] = []
        self.state: JobState | None = None

    def tick(self) -> None:
        now = time.time()
        if now < self._next:
            return
        self._next = now + SCRAPE_EVERY_S
        at = round(now - self._t0, 3)
        state = self._client.get(self._job_id).state
        if state is not self.state:
            progress(f"{at:7.1f} s: job {state.value}")
            self.state = state
        for family in self._collector.collect():
            if family.name != GPU_UTILIZATION:
                continue
            for sample in family.samples:
                self.metric_values.append({"t": at, "labels": sample.labels, "value": sample.value})
        self.scrapes += 1
        if state is not JobState.RUNNING:
            return
        self.scrapes_while_running += 1
        directory = self._attempt_dir()
        if self._nvml is not None and directory is not None:
            for index in read_gpu_ids(directory) or [0]:
                self._nvml.sample(index, at)

    def _attempt_dir(self) -> Path | None:
        attempts = self._client.attempts(self._job_id)
        return status_dir(attempts[-1]) if attempts else None


def status_dir(attempt: Attempt) -> Path | None:
    """Where the job side writes ``events.jsonl`` (as the collector looks for it)."""
    directory = attempt.details.get("status_dir") or attempt.details.get("dir")
    return Path(directory) if isinstance(directory, str) else None


def job_spec(device: str, seconds: float) -> dict[str, Any]:
    return {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "gpu-utilization-check",
        "project": "bench",
        "command": [sys.executable, "-c", JOB, device, str(seconds)],
        "resources": {"gpus": 1, "walltime": f"{int(seconds) + 300}s"},
        "retry": {"max_attempts": 1},
    }


def last_json_line(path: Path) -> Any:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def tail(path: Path, size: int) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return text[-size:] or None


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    check_machine(args.device)
    smoke = args.device != "cuda"
    parent = args.dir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="gpu-util-bench-", dir=parent))
    settings = Settings(home=root / "home", poll_interval_s=0.2, local_gpus=1 if smoke else None)
    nvml = None if smoke else Nvml()
    client = Client(settings)
    t0 = time.time()
    timed_out = False
    try:
        job = client.submit(load_spec_document(job_spec(args.device, args.seconds)), actor="bench")
        progress(f"submitted {job.job_id} ({args.seconds:g} s of matmuls on {args.device})")
        watcher = Watcher(client, job.job_id, nvml, t0)
        try:
            (done,) = client.wait(
                [job.job_id], timeout_s=args.seconds + args.timeout, on_cycle=watcher.tick
            )
        except TimeoutError:
            timed_out = True
            progress("timed out: cancelling the job")
            client.cancel(job.job_id, actor="bench")
            (done,) = client.wait([job.job_id], timeout_s=60, on_cycle=watcher.tick)
        attempts = client.attempts(job.job_id)
    finally:
        client.close()
        if nvml is not None:
            nvml.close()
    attempt = attempts[-1] if attempts else None
    directory = status_dir(attempt) if attempt is not None else None
    events = read_status_events(directory)[0] if directory is not None else []
    samples = [{"time": e.time, **e.data} for e in events if e.kind == GPU_SAMPLE]
    result: dict[str, Any] = {
        "device_kind": args.device,
        "smoke_test": smoke,
        "seconds": args.seconds,
        "local_executor_gpus": 1 if smoke else detect_gpus(),
        "job_id": done.job_id,
        "job_state": done.state.value,
        "job_reason": done.reason,
        "exit_code": done.exit_code,
        "attempt_dir": str(directory) if directory else None,
        "gpu_ids": read_gpu_ids(directory) if directory else None,
        "job_report": last_json_line(directory / STDOUT_FILE) if directory else None,
        "gpu_samples": samples,
        "gpu_samples_count": len(samples),
        "latest_gpu_utilization": (
            latest_gpu_utilization(directory, since=t0) if directory is not None else None
        ),
        "metric": GPU_UTILIZATION,
        "metric_scrapes": watcher.scrapes,
        "metric_scrapes_while_running": watcher.scrapes_while_running,
        "metric_values": watcher.metric_values,
        "metric_last": watcher.metric_values[-1]["value"] if watcher.metric_values else None,
        "nvml_reference": nvml.summary() if nvml is not None else None,
    }
    if done.state is not JobState.SUCCEEDED and directory is not None:
        result["job_stderr_tail"] = tail(directory / STDERR_FILE, STDERR_TAIL)
    problems = []
    if timed_out:
        problems.append(f"the job did not end within {args.seconds + args.timeout:g} s")
    if done.state is not JobState.SUCCEEDED:
        problems.append(f"the job ended {done.state.value}: {done.reason}")
    if not samples:
        problems.append(
            f"no {GPU_SAMPLE} events in the attempt's {EVENTS_FILE}: nothing recorded the "
            "job's GPU utilisation from NVML"
        )
    if not watcher.metric_values:
        problems.append(
            f"{GPU_UTILIZATION} had no value in any of {watcher.scrapes_while_running} "
            "scrapes while the job ran"
        )
    result["problems"] = problems
    shutil.rmtree(root, ignore_errors=True)
    return result, problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a GPU job through the local executor; show its recorded utilisation."
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the job computes")
    parser.add_argument("--dir", type=Path, default=None, help="scratch space (default: temp)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed beyond --seconds"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.timeout <= 0:
        parser.error("--seconds and --timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for key in [k for k in os.environ if k.startswith("HPCBRIDGE_")]:
        del os.environ[key]  # a temporary home, and nothing of the caller's configuration
    try:
        result, problems = run(args)
    except UnavailableError as exc:
        print(f"gpu_utilization: cannot run here: {exc}", file=sys.stderr)
        return NO_DEVICE
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    if result["smoke_test"]:
        return 0 if result["job_state"] == JobState.SUCCEEDED.value else 1
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
