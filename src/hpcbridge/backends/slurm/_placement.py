"""Which node to ask for, for a job whose inputs a node-local cache already holds: pure.

The control plane knows what each node's cache held at its last report (``_locality``) and
what each node is doing now (``sinfo`` or slurmrestd's ``/nodes``). A job is pinned
(``--nodelist``, or the node list of a REST submission) only to a node that holds most of
its input bytes and could start it now: idle or mixed with the CPUs, memory and GPUs free,
not drained, powered down or unreachable, in the job's partition. A busy or drained node is
never waited for: without such a node the scheduler places the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpcbridge.backends.slurm._preflight import gpus_of
from hpcbridge.backends.slurm._records import NodeRecord

_USABLE_STATES = ("idle", "mixed")
_UNUSABLE_FLAGS = frozenset(
    {
        "DRAIN",
        "NOT_RESPONDING",
        "POWERED_DOWN",
        "POWERING_DOWN",
        "POWER_DOWN",
        "POWERING_UP",
        "MAINTENANCE",
        "RESERVED",
        "FAIL",
        "REBOOT_REQUESTED",
        "REBOOT_ISSUED",
    }
)


@dataclass(frozen=True, slots=True)
class Placement:
    node: str
    inputs_held: int
    inputs_total: int
    bytes_held: int
    bytes_total: int
    tasks: int = 1
    """Array tasks that will run there at once (the array, or its throttle): room for
    all of them now."""

    def sentence(self) -> str:
        together = (
            f"; room there now for {self.tasks} array tasks at once" if self.tasks > 1 else ""
        )
        return (
            f"placed on {self.node}: holds {self.inputs_held} of {self.inputs_total} inputs, "
            f"{self.bytes_held / 1e6:.1f} of {self.bytes_total / 1e6:.1f} MB{together}"
        )

    def to_data(self) -> dict[str, Any]:
        """The attempt's ``placement`` detail: the ``placed`` event's data and reason."""
        return {
            "node": self.node,
            "inputs_held": self.inputs_held,
            "inputs_total": self.inputs_total,
            "bytes_held": self.bytes_held,
            "bytes_total": self.bytes_total,
            "tasks": self.tasks,
            "reason": self.sentence(),
        }


def free_gpus(node: NodeRecord) -> dict[str, int]:
    """GPUs no job holds on ``node`` now, by type (``""``: of any type). A count used
    without a type is taken from every type, so a doubt never makes a GPU free."""
    total, used = gpus_of(node.gres), gpus_of(node.gres_used)
    free_any = max(sum(total.values()) - sum(used.values()), 0)
    free = {kind: min(count - used.get(kind, 0), free_any) for kind, count in total.items()}
    return {**free, "": free_any}


def gpus_fit(wanted: Mapping[str, int], free: Mapping[str, int]) -> bool:
    """Whether ``wanted`` (``gpus_of`` of a request: ``gpu:2`` takes any type) is free."""
    return all(free.get(kind, 0) >= count for kind, count in wanted.items())


def usable_now(
    node: NodeRecord,
    *,
    partition: str | None,
    cpus: int,
    mem_mb: int | None,
    gpus: Mapping[str, int] | None = None,
) -> bool:
    """Whether ``node`` could start a job of ``cpus``, ``mem_mb`` and ``gpus`` (by type,
    ``""`` for any) in ``partition`` now."""
    if node.state not in _USABLE_STATES or node.drained:
        return False
    if _UNUSABLE_FLAGS.intersection(flag.upper() for flag in node.state_flags):
        return False
    if partition is not None and partition not in node.partitions:
        return False
    if node.cpus_total - node.cpus_alloc < cpus:
        return False
    if gpus and not gpus_fit(gpus, free_gpus(node)):
        return False
    return mem_mb is None or node.mem_total_mb - node.mem_alloc_mb >= mem_mb


def choose_node(
    inputs: Mapping[str, int],
    holdings: Mapping[str, Mapping[str, int]],
    nodes: Sequence[NodeRecord],
    *,
    partition: str | None,
    cpus: int,
    mem_mb: int | None = None,
    gpus: Mapping[str, int] | None = None,
    tasks: int = 1,
) -> Placement | None:
    """The usable node holding the most of ``inputs`` (digest -> bytes), if it holds more
    than half of their bytes; ties go to the node holding more files, then by name.
    ``cpus``, ``mem_mb`` and ``gpus`` are per task; ``tasks`` must all fit at once."""
    bytes_total = sum(inputs.values())
    if not inputs:
        return None
    need_cpus, need_mb = tasks * cpus, None if mem_mb is None else tasks * mem_mb
    need_gpus = {kind: tasks * count for kind, count in (gpus or {}).items()}
    best: Placement | None = None
    for node in sorted(nodes, key=lambda n: n.name):
        held = holdings.get(node.name, {})
        digests = [digest for digest in inputs if digest in held]
        candidate = Placement(
            node.name,
            len(digests),
            len(inputs),
            sum(inputs[d] for d in digests),
            bytes_total,
            tasks,
        )
        if candidate.inputs_held == 0 or 2 * candidate.bytes_held <= bytes_total:
            continue
        if not usable_now(
            node, partition=partition, cpus=need_cpus, mem_mb=need_mb, gpus=need_gpus
        ):
            continue
        rank = (candidate.bytes_held, candidate.inputs_held)
        if best is None or rank > (best.bytes_held, best.inputs_held):
            best = candidate
    return best
