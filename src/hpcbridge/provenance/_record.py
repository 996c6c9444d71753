"""A job's provenance, read from its record and events: what went in, what came out, how."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpcbridge.provenance._origin import without_secrets
from hpcbridge.states import JobState
from hpcbridge.store import Attempt, Event, Job

ORIGIN_EVENT = "provenance_origin"


def _files(events: list[Event], state: JobState) -> list[dict[str, Any]]:
    """The files of the latest stage that ended in ``state`` (its event carries them)."""
    for event in reversed(events):
        if event.to_state is state and "files_list" in (event.data or {}):
            return list(event.data["files_list"])
    return []


def _container(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The image the job ran in and the digest every attempt was pinned to."""
    container = spec.get("container")
    if not container:
        return None
    return {"image": container["image"], "digest": container.get("digest")}


def build(job: Job, attempts: list[Attempt], events: list[Event]) -> dict[str, Any]:
    spec = dict(job.spec)
    origin = next((dict(e.data) for e in events if e.kind == ORIGIN_EVENT), {})
    return {
        "job_id": job.job_id,
        "name": job.name,
        "project": job.project,
        "state": job.state.value,
        "failure_class": job.failure_class.value if job.failure_class else None,
        "submitted_at": job.created_at,
        "command": spec.get("command") or {"script": spec.get("script")},
        "spec": spec,
        "environment": without_secrets(spec.get("env") or {}),
        "container": _container(spec),
        "origin": origin,
        "inputs": _files(events, JobState.QUEUED),
        "outputs": _files(events, JobState.SUCCEEDED) or _files(events, JobState.FAILED),
        "attempts": [
            {
                "number": a.number,
                "backend": a.backend,
                "native_id": a.native_id,
                "nodes": list(a.nodes),
                "started_at": a.started_at,
                "ended_at": a.ended_at,
                "exit_code": a.exit_code,
                "failure_class": a.failure_class.value if a.failure_class else None,
            }
            for a in attempts
        ],
    }


def pinned_spec(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The job's spec for a rerun, each single-file input pinned to the digest it had (a
    changed input then fails the rerun's stage-in with checksum_mismatch); and the inputs
    that could not be pinned (trees: their files are staged and recorded afresh)."""
    spec = {k: v for k, v in doc["spec"].items() if k != "submit_dir"}
    by_source = {f["source"]: f for f in doc["inputs"]}
    entries, loose = [], []
    for entry in spec.get("stage_in") or []:
        record = by_source.get(entry["source"])
        if record is None and "://" not in entry["source"]:
            record = by_source.get(str(Path(doc["spec"].get("submit_dir") or "/", entry["source"])))
        if record is not None and not entry.get("include") and not entry.get("exclude"):
            entries.append({**entry, "checksum": record["digest"]})
        else:
            entries.append(entry)
            loose.append(entry["source"])
    if entries:
        spec["stage_in"] = entries
    return spec, loose
