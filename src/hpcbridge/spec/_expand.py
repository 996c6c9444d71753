"""Expanding an array/sweep spec into its tasks: ``{index}`` and ``{param}`` substitution."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpcbridge.errors import SpecError
from hpcbridge.spec._model import ArraySpec, JobSpec

MAX_TASKS = 100_000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of an array: its index, its parameters and the spec it runs."""

    index: int
    params: dict[str, str]
    spec: JobSpec


def parse_indices(text: str) -> list[int]:
    """Slurm-style index list: ``0-99``, ``1-9:2``, ``1,3,5-7``."""
    indices: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+)(?::(\d+))?)?\s*", part)
        if not match:
            raise SpecError(
                f"array.indices: {text!r} is not an index list; use e.g. '0-99', '1-9:2', '1,3,5'"
            )
        start, end, step = match.groups()
        first, last = int(start), int(end) if end else int(start)
        if last < first or (step is not None and int(step) < 1):
            raise SpecError(f"array.indices: {part.strip()!r} is an empty or reversed range")
        span = range(first, last + 1, int(step or 1))
        if len(span) > MAX_TASKS:  # checked before building it: '0-99999999999' stays cheap
            raise SpecError(f"array.indices: more than {MAX_TASKS} tasks; split the sweep")
        indices.update(span)
        if len(indices) > MAX_TASKS:
            raise SpecError(f"array.indices: more than {MAX_TASKS} tasks; split the sweep")
    return sorted(indices)


def task_count(array: ArraySpec) -> int:
    grid = 1
    for values in array.params.values():
        grid *= len(values)
    return (len(parse_indices(array.indices)) if array.indices else 1) * grid


def expand(spec: JobSpec) -> list[TaskSpec]:
    """Tasks of ``spec``: the index range crossed with the parameter grid, in a stable order."""
    if spec.array is None:
        return [TaskSpec(index=0, params={}, spec=spec)]
    array = spec.array
    if task_count(array) > MAX_TASKS:
        raise SpecError(f"array: more than {MAX_TASKS} tasks; split the sweep")
    base = list(parse_indices(array.indices)) if array.indices else [None]
    names = list(array.params)
    combos = list(itertools.product(*(array.params[n] for n in names)))
    tasks: list[TaskSpec] = []
    for position, (index, combo) in enumerate(itertools.product(base, combos)):
        # A plain index range keeps Slurm's numbering; a grid numbers its points in order.
        task_index = index if index is not None and not names else position
        params = {name: _text(value) for name, value in zip(names, combo, strict=True)}
        values = {"index": str(index if index is not None else position), **params}
        tasks.append(TaskSpec(task_index, params, _substitute(spec, values)))
    return tasks


TASK_OWN_FIELDS = frozenset({"command", "env", "script"})
"""What tasks of one array may differ in; everything else they share with each other."""


def shared_part(document: Mapping[str, Any]) -> dict[str, Any]:
    """A task's stored document without what tasks of one array may differ in."""
    return {k: v for k, v in document.items() if k not in TASK_OWN_FIELDS}


def task_documents(spec: JobSpec) -> list[tuple[TaskSpec, dict[str, Any]]]:
    """Each task with its stored document, equal to ``task.spec.to_document()`` but built
    from the part all tasks share, dumped once (10,000 model dumps cost seconds)."""
    tasks = expand(spec)
    shared = shared_part(tasks[0].spec.to_document())
    out = []
    for task in tasks:
        document = dict(shared)
        if task.spec.command is not None:
            document["command"] = list(task.spec.command)
        if task.spec.env:
            document["env"] = dict(task.spec.env)
        if task.spec.script is not None:
            document["script"] = task.spec.script
        out.append((task, document))
    return out


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _substitute(spec: JobSpec, values: dict[str, str]) -> JobSpec:
    def fill(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                return match.group(0)  # not ours: leave e.g. shell-like {HOME} untouched
            return values[key]

        return _PLACEHOLDER.sub(one, text)

    update: dict[str, object] = {"array": None, "env": {k: fill(v) for k, v in spec.env.items()}}
    if spec.command is not None:
        update["command"] = tuple(fill(arg) for arg in spec.command)
    if spec.script is not None:
        update["script"] = fill(spec.script)
    return spec.model_copy(update=update)


def unknown_placeholders(spec: JobSpec) -> list[str]:
    """Placeholders in argv that no parameter fills: almost always a typo."""
    if spec.array is None:
        return []
    known = {"index", *spec.array.params}
    texts = [*list(spec.command or ()), spec.script or "", *list(spec.env.values())]
    found = {m for text in texts for m in _PLACEHOLDER.findall(text)}
    return sorted(found - known)
