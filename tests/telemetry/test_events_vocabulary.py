"""The event vocabulary (``hpcbridge.events``) names exactly what the code writes.

Producers that cannot import it (the store sits below it; the checkpoint SDK, the GPU
sampler and the fabric probe run inside the job) spell the kinds as strings, so the
source is read here: every kind written is in the vocabulary, and every kind in the
vocabulary is written by someone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from hpcbridge.backends import gpu_sampler
from hpcbridge.backends.slurm import fabric_probe
from hpcbridge.events import (
    INGESTED_KINDS,
    JOB_SIDE_KINDS,
    RELEVANT_KINDS,
    RTT_S_P50,
    UTILIZATION,
    VOCABULARY,
    EventKind,
)
from hpcbridge.retention import KEPT_EVENT_KINDS
from hpcbridge.states import AttemptState, JobState
from hpcbridge.store import MemoryStore, NewJob, new_job_id
from hpcbridge.telemetry import ingestable_events
from hpcbridge.telemetry._status import EVENTS_FILE

SRC = Path(__file__).resolve().parents[2] / "src" / "hpcbridge"
READERS = ("events", "telemetry", "slo")
"""Packages that only read events: their strings prove nothing about producers."""
_KIND_ARGUMENT = {"add_event": 1, "_append": 1, "_event_row": 1, "emit": 0}
"""Calls that write an event, and the position of the kind among their arguments."""


def _producer_trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] in READERS:
            continue
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _written() -> tuple[dict[str, set[str]], set[str]]:
    """Kinds written as literals (with the data fields of the SDK's ``emit`` calls, its
    keywords), and the prefixes of kinds built with an f-string (``f"attempt_{...}"``)."""
    kinds: dict[str, set[str]] = {}
    prefixes: set[str] = set()
    for _, tree in _producer_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in _KIND_ARGUMENT:
                index = _KIND_ARGUMENT[_name(node.func)]
                if len(node.args) <= index:
                    continue
                kind = node.args[index]
                if isinstance(kind, ast.Constant) and isinstance(kind.value, str):
                    found = kinds.setdefault(kind.value, set())
                    if _name(node.func) == "emit":
                        found.update(k.arg for k in node.keywords if k.arg is not None)
                elif isinstance(kind, ast.JoinedStr) and isinstance(kind.values[0], ast.Constant):
                    prefixes.add(str(kind.values[0].value))
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                # ``kind = "node_drained"`` before add_event(..., kind); ``EVENT = "..."``
                # in the job-side scripts, which write {"type": EVENT, ...}.
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
                if names & {"kind", "EVENT"} and isinstance(node.value.value, str):
                    kinds.setdefault(node.value.value, set())
    return kinds, prefixes


def test_every_kind_written_is_in_the_vocabulary() -> None:
    kinds, prefixes = _written()
    assert set(kinds) <= set(VOCABULARY), set(kinds) - set(VOCABULARY)
    assert prefixes == {"attempt_"}
    # Attempts are created prepared and never go back to it: record_submitted writes
    # attempt_submitted, the loop attempt_<state> for each later state.
    later = {f"attempt_{s.value}" for s in AttemptState if s is not AttemptState.PREPARED}
    assert later <= set(VOCABULARY)


def test_every_kind_in_the_vocabulary_is_written() -> None:
    kinds, _ = _written()
    from_states = {f"attempt_{s.value}" for s in AttemptState}
    unwritten = {k for k in VOCABULARY if k not in kinds and k not in from_states}
    assert not unwritten


def _compared_kinds() -> Iterator[tuple[str, str]]:
    """(file, literal) for every ``<x>.kind == "literal"`` (or ``!=``, ``in``) in the source."""
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            if not any(isinstance(x, ast.Attribute) and x.attr == "kind" for x in sides):
                continue
            for side in sides:
                values = side.elts if isinstance(side, ast.Tuple | ast.Set | ast.List) else [side]
                for value in values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        yield str(path.relative_to(SRC)), value.value


def test_every_kind_read_is_in_the_vocabulary() -> None:
    read = list(_compared_kinds())
    assert read  # hpcbridge why reads kill, cancel_requested, node_drained...
    assert [(f, k) for f, k in read if k not in VOCABULARY] == []


def test_the_sdk_writes_the_fields_the_vocabulary_lists() -> None:
    kinds, _ = _written()
    for kind, fields in kinds.items():
        assert fields <= set(VOCABULARY[EventKind(kind)].fields), kind


def test_job_side_scripts_spell_the_vocabulary() -> None:
    assert gpu_sampler.EVENT == EventKind.GPU_SAMPLE
    assert fabric_probe.EVENT == EventKind.FABRIC_LATENCY
    latency = fabric_probe.latency_event([1e-5, 3e-5], ["a", "b"])
    assert set(latency) - {"type", "time"} == set(VOCABULARY[EventKind.FABRIC_LATENCY].fields)
    assert RTT_S_P50 in latency
    assert VOCABULARY[EventKind.GPU_SAMPLE].fields == (UTILIZATION,)


def test_the_store_writes_acceptance_and_transitions() -> None:
    store = MemoryStore()
    job_id = new_job_id()
    store.create_jobs([NewJob(job_id, "n", "p", "batch", "local", {})], now=1.0, actor="t")
    store.transition(job_id, JobState.QUEUED, expected_version=1, now=2.0)
    assert [e.kind for e in store.all_events()] == [EventKind.ACCEPTED, EventKind.TRANSITION]


def test_only_stored_job_side_kinds_are_ingested(tmp_path: Path) -> None:
    lines = [f'{{"type": "{kind}", "time": 1.0}}\n' for kind in sorted(JOB_SIDE_KINDS)]
    (tmp_path / EVENTS_FILE).write_text("".join(lines), encoding="utf-8")
    assert {e.kind for e in ingestable_events(tmp_path)} == INGESTED_KINDS
    assert {k for k in JOB_SIDE_KINDS if VOCABULARY[k].stored} == INGESTED_KINDS
    assert EventKind.GPU_SAMPLE not in INGESTED_KINDS


def test_retention_keeps_every_kind_the_fold_reads() -> None:
    """gc deletes old events of other kinds: a fold of what it leaves must not change."""
    assert RELEVANT_KINDS <= KEPT_EVENT_KINDS
    assert set(VOCABULARY) >= KEPT_EVENT_KINDS
