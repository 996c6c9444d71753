"""Slots of this machine: CPUs, memory and GPUs, so that jobs queue instead of oversubscribing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from hpcbridge.spec import Resources


@dataclass(frozen=True, slots=True)
class Request:
    cpus: int
    mem_mb: int
    gpus: int

    @classmethod
    def of(cls, resources: Resources) -> Request:
        return cls(resources.cpus_per_node, resources.mem_mb or 0, resources.gpus)

    def as_details(self) -> dict[str, int]:
        return {"cpus": self.cpus, "mem_mb": self.mem_mb, "gpus": self.gpus}


@dataclass(frozen=True, slots=True)
class Capacity:
    cpus: int
    mem_mb: int
    gpus: int

    @classmethod
    def detect(cls, cpus: int | None, mem_mb: int | None, gpus: int | None) -> Capacity:
        return cls(
            cpus=cpus or psutil.cpu_count() or 1,
            mem_mb=mem_mb or psutil.virtual_memory().total // (1024 * 1024),
            gpus=detect_gpus() if gpus is None else gpus,
        )

    def too_big(self, request: Request) -> list[str]:
        """Problems for a request that could never fit, whatever else is running."""
        problems = []
        if request.cpus > self.cpus:
            problems.append(
                f"resources: the job asks for {request.cpus} CPUs per node but this "
                f"machine has {self.cpus}; lower tasks_per_node/cpus_per_task or "
                "use the slurm backend"
            )
        if request.mem_mb > self.mem_mb:
            problems.append(
                f"resources.mem: {request.mem_mb} MB asked but this machine has "
                f"{self.mem_mb} MB; lower mem or use the slurm backend"
            )
        if request.gpus > self.gpus:
            problems.append(
                f"resources.gpus: {request.gpus} GPUs asked but this machine has "
                f"{self.gpus}; lower gpus or use the slurm backend"
            )
        return problems

    def shortfall(self, request: Request, in_use: Iterable[Mapping[str, Any]]) -> str | None:
        """Why ``request`` cannot start now, or None when it fits beside ``in_use``."""
        used = Request(0, 0, 0)
        for details in in_use:
            used = Request(
                used.cpus + int(details.get("cpus", 0)),
                used.mem_mb + int(details.get("mem_mb", 0)),
                used.gpus + int(details.get("gpus", 0)),
            )
        if used.cpus + request.cpus > self.cpus:
            return f"waiting for {request.cpus} CPU(s): {used.cpus} of {self.cpus} in use"
        if used.mem_mb + request.mem_mb > self.mem_mb:
            return (
                f"waiting for {request.mem_mb} MB of memory: {used.mem_mb} of "
                f"{self.mem_mb} MB in use"
            )
        if used.gpus + request.gpus > self.gpus:
            return f"waiting for {request.gpus} GPU(s): {used.gpus} of {self.gpus} in use"
        return None


def free_gpu_ids(total: int, in_use: Iterable[Mapping[str, Any]], count: int) -> list[int]:
    taken = {int(i) for details in in_use for i in details.get("gpu_ids", [])}
    return [i for i in range(total) if i not in taken][:count]


def detect_gpus() -> int:
    """GPUs NVIDIA's driver reports; 0 where there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
