"""What a cluster can run, and why a spec asks for more: pure functions, no I/O.

Before a Slurm job is stored, ``refusals`` holds the spec against the cluster's partitions,
nodes and licences (``ClusterFacts``, from ``scontrol``/``sinfo`` or slurmrestd, cached by
``_facts``) and names what exists, so that a partition that is not there or more GPUs than
any node has is refused at once instead of failing in the queue. ``sbatch --test-only``
then gives the scheduler's own verdict and start estimate (``parse_test_only``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hpcbridge.backends.slurm._records import NodeRecord, PartitionRecord
from hpcbridge.spec import JobSpec


@dataclass(frozen=True, slots=True)
class NodeFacts:
    name: str
    features: tuple[str, ...]
    gpus: Mapping[str, int]
    """GPUs by type (``""`` for untyped ones)."""
    cpus: int
    mem_mb: int


@dataclass(frozen=True, slots=True)
class PartitionFacts:
    name: str
    nodes: tuple[str, ...]
    max_time_s: float | None
    default: bool


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """A cluster's partitions, nodes and licence totals at ``taken_at``."""

    cluster: str
    partitions: tuple[PartitionFacts, ...]
    nodes: tuple[NodeFacts, ...]
    licences: Mapping[str, int] = field(default_factory=dict)
    taken_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterFacts:
        return cls(
            cluster=str(data["cluster"]),
            partitions=tuple(
                PartitionFacts(
                    name=str(p["name"]),
                    nodes=tuple(p["nodes"]),
                    max_time_s=p["max_time_s"],
                    default=bool(p["default"]),
                )
                for p in data["partitions"]
            ),
            nodes=tuple(
                NodeFacts(
                    name=str(n["name"]),
                    features=tuple(n["features"]),
                    gpus=dict(n["gpus"]),
                    cpus=int(n["cpus"]),
                    mem_mb=int(n["mem_mb"]),
                )
                for n in data["nodes"]
            ),
            licences=dict(data["licences"]),
            taken_at=float(data["taken_at"]),
        )


_GRES_ITEM = re.compile(r"^gpu(?::([^:(]+))?(?::(\d+))(?:\(.*\))?$")
_GRES_COMMA = re.compile(r",(?![^(]*\))")
"""A comma between GRES, not one inside ``(IDX:0,2)``."""


def gpus_of(gres: str) -> dict[str, int]:
    """``gpu:fake:2(S:0),gpu:1`` -> ``{'fake': 2, '': 1}``; other GRES are left out. Reads
    a node's ``gres`` and ``gres_used`` (``gpu:fake:2(IDX:0,2)``) and a job's request."""
    out: dict[str, int] = {}
    for item in _GRES_COMMA.split(gres):
        match = _GRES_ITEM.match(item.strip())
        if match is not None:
            kind = match.group(1) or ""
            out[kind] = out.get(kind, 0) + int(match.group(2))
    return out


def collect(
    cluster: str,
    partitions: Sequence[PartitionRecord],
    nodes: Sequence[NodeRecord],
    licences: Mapping[str, int],
    now: float,
) -> ClusterFacts:
    return ClusterFacts(
        cluster=cluster,
        partitions=tuple(
            PartitionFacts(p.name, tuple(p.nodes), p.max_time_s, p.default) for p in partitions
        ),
        nodes=tuple(
            NodeFacts(n.name, tuple(n.features), gpus_of(n.gres), n.cpus_total, n.mem_total_mb)
            for n in nodes
        ),
        licences=dict(licences),
        taken_at=now,
    )


def parse_scontrol_licences(text: str) -> dict[str, int]:
    """``scontrol show licenses -o``: ``LicenseName=fluent Total=4 Used=0 ...`` per line."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        values = dict(item.partition("=")[::2] for item in line.split())
        if values.get("LicenseName") and values.get("Total", "").isdigit():
            out[values["LicenseName"]] = int(values["Total"])
    return out


def parse_rest_licences(document: Mapping[str, Any]) -> dict[str, int]:
    """slurmrestd's ``/licenses``: ``{"licenses": [{"LicenseName": ..., "Total": N}]}``."""
    out: dict[str, int] = {}
    for entry in document.get("licenses") or []:
        if not isinstance(entry, Mapping):
            continue
        name = entry.get("LicenseName") or entry.get("name")
        total = entry.get("Total", entry.get("total"))
        if name and isinstance(total, int):
            out[str(name)] = total
    return out


_TEST_ONLY = re.compile(r"Job \d+ to start at (\S+) using (\d+) processors? on nodes (\S+)")


def parse_test_only(stderr: str) -> str | None:
    """``sbatch --test-only``'s estimate as a phrase: ``2026-12-06 02:00:00 on n1 (1 CPU)``."""
    match = _TEST_ONLY.search(stderr)
    if match is None:
        return None
    when, cpus, nodes = match.groups()
    if not re.match(r"^\d{4}-\d\d-\d\dT[\d:]+$", when):
        return None  # not Slurm's standard time format: no estimate rather than a wrong one
    when = when.replace("T", " ")
    return f"{when} on {nodes} ({cpus} CPU{'s' if cpus != '1' else ''})"


def _names(items: Iterable[str]) -> str:
    listed = sorted(set(items))
    return ", ".join(listed) if listed else "none"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def refusals(spec: JobSpec, default_partition: str | None, facts: ClusterFacts) -> list[str]:
    """What in ``spec`` this cluster cannot satisfy, each naming what exists there."""
    where = f"on cluster {facts.cluster}"
    by_name = {p.name: p for p in facts.partitions}
    wanted = spec.placement.partition or default_partition
    if wanted is None:
        defaults = [p for p in facts.partitions if p.default]
        if not defaults:
            return []  # Slurm picks; nothing to hold the spec against
        wanted = defaults[0].name
    partition = by_name.get(wanted)
    if partition is None:
        return [
            f"placement.partition: partition {wanted!r} does not exist {where}; "
            f"partitions: {', '.join(by_name) or 'none'}"
        ]
    problems = _licence_refusals(spec.licences, facts.licences, where)
    nodes = [n for n in facts.nodes if n.name in set(partition.nodes)]
    in_part = f"partition {partition.name!r} {where}"
    resources = spec.resources
    if partition.max_time_s is not None and (resources.walltime_s or 0) > partition.max_time_s:
        problems.append(
            f"resources.walltime: {_minutes(resources.walltime_s or 0)} asked, {in_part} "
            f"allows at most {_minutes(partition.max_time_s)}"
        )
    if not nodes:
        return problems  # its nodes are out of sight (PrivateData): sbatch judges them
    features = set(spec.placement.features)
    known = {f for n in nodes for f in n.features}
    unknown = sorted(features - known)
    if unknown:
        return [
            *problems,
            f"placement.features: no node of {in_part} has feature "
            f"{', '.join(map(repr, unknown))}; features there: {_names(known)}",
        ]
    nodes = [n for n in nodes if features <= set(n.features)]
    if not nodes:
        return [
            *problems,
            f"placement.features: no node of {in_part} has all of {', '.join(sorted(features))}",
        ]
    problems += _node_refusals(spec, nodes, in_part)
    return problems


def _licence_refusals(asked: Mapping[str, int], totals: Mapping[str, int], where: str) -> list[str]:
    problems = []
    offered = ", ".join(f"{name} ({count})" for name, count in sorted(totals.items())) or "none"
    cluster = where.removeprefix("on ")
    for name, count in asked.items():
        if name not in totals:
            problems.append(
                f"licences: licence {name!r} does not exist {where}; licences: {offered}"
            )
        elif count > totals[name]:
            problems.append(
                f"licences: {count} {name!r} licences asked, but {cluster} has "
                f"{totals[name]} in all"
            )
    return problems


def _node_refusals(spec: JobSpec, nodes: Sequence[NodeFacts], in_part: str) -> list[str]:
    """GPUs, memory and CPUs per node, and the number of nodes, against the nodes that
    have the spec's features."""
    resources = spec.resources
    problems = []
    fitting = list(nodes)
    if resources.gpus > 0:
        kind = resources.gpu_type
        types = {t for n in nodes for t in n.gpus if t}
        if kind is not None and kind not in types:
            return [
                f"resources.gpu_type: no GPU of type {kind!r} in {in_part}; "
                f"types there: {_names(types)}"
            ]

        def count(node: NodeFacts) -> int:
            return node.gpus.get(kind, 0) if kind is not None else sum(node.gpus.values())

        most = max((count(n) for n in nodes), default=0)
        if resources.gpus > most:
            return [
                f"resources.gpus: {resources.gpus} GPUs per node asked, but the nodes of "
                f"{in_part} have at most {most}"
            ]
        fitting = [n for n in fitting if count(n) >= resources.gpus]
    if resources.mem_mb is not None:
        most_mem = max((n.mem_mb for n in fitting), default=0)
        if resources.mem_mb > most_mem:
            problems.append(
                f"resources.mem: {resources.mem_mb} MB per node asked, but the nodes of "
                f"{in_part} have at most {most_mem} MB"
            )
        fitting = [n for n in fitting if n.mem_mb >= resources.mem_mb]
    cpus = resources.tasks_per_node * resources.cpus_per_task
    most_cpus = max((n.cpus for n in nodes), default=0)
    if cpus > most_cpus:
        problems.append(
            f"resources: {cpus} CPUs per node asked (tasks_per_node x cpus_per_task), but the "
            f"nodes of {in_part} have at most {most_cpus}"
        )
    fitting = [n for n in fitting if n.cpus >= cpus]
    if not problems and resources.nodes > len(fitting):
        problems.append(
            f"resources.nodes: {resources.nodes} nodes asked, but {in_part} has "
            f"{len(fitting)} that fit ({_names(n.name for n in fitting)})"
        )
    return problems
