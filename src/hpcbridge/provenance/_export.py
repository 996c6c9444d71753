"""Provenance in the two exchange formats: W3C PROV-JSON and an RO-Crate directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpcbridge.errors import ConfigError


def _entity(record: dict[str, Any]) -> dict[str, Any]:
    algorithm, _, digest = str(record["digest"]).partition(":")
    return {
        "prov:type": "file",
        "prov:location": record["path"],
        "hb:source": record["source"],
        "hb:size": record["size"],
        f"hb:{algorithm}": digest,
    }


def to_prov_json(doc: dict[str, Any]) -> dict[str, Any]:
    """PROV-JSON (https://www.w3.org/submissions/prov-json/): the job is an activity that
    used its inputs and generated its outputs, associated with the submitting software."""
    job = f"hb:job/{doc['job_id']}"
    agent = f"hb:hpcbridge/{doc['origin'].get('hpcbridge_version', 'unknown')}"
    entities: dict[str, Any] = {}
    used: dict[str, Any] = {}
    generated: dict[str, Any] = {}
    for kind, files in (("input", doc["inputs"]), ("output", doc["outputs"])):
        for n, record in enumerate(files):
            name = f"hb:{kind}/{doc['job_id']}/{n}"
            entities[name] = _entity(record)
            link = {"prov:activity": job, "prov:entity": name}
            (used if kind == "input" else generated)[f"_:{kind}{n}"] = link
    attempts = doc["attempts"]
    activity: dict[str, Any] = {
        "prov:type": "hb:Job",
        "prov:label": doc["name"],
        "hb:state": doc["state"],
        "hb:command": json.dumps(doc["command"]),
        "hb:attempts": len(attempts),
    }
    if attempts and attempts[0]["started_at"]:
        activity["prov:startTime"] = _iso(attempts[0]["started_at"])
    if attempts and attempts[-1]["ended_at"]:
        activity["prov:endTime"] = _iso(attempts[-1]["ended_at"])
    container = doc.get("container")
    if container:
        activity["hb:container_image"] = container["image"]
        activity["hb:container_digest"] = container["digest"]
    git = doc["origin"].get("git")
    if git:
        activity["hb:git_commit"] = git["commit"]
        activity["hb:git_dirty"] = git["dirty"]
    return {
        "prefix": {"hb": "urn:hpcbridge:"},
        "entity": entities,
        "activity": {job: activity},
        "agent": {agent: {"prov:type": "prov:SoftwareAgent"}},
        "used": used,
        "wasGeneratedBy": generated,
        "wasAssociatedWith": {"_:assoc": {"prov:activity": job, "prov:agent": agent}},
    }


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.fromtimestamp(seconds, UTC).isoformat()


def write_ro_crate(doc: dict[str, Any], out: Path) -> Path:
    """An RO-Crate directory (metadata only: files are referenced, not copied), written
    with the rocrate library (the ``provenance`` extra)."""
    try:
        from rocrate.model.contextentity import ContextEntity  # noqa: PLC0415
        from rocrate.rocrate import ROCrate  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(
            "RO-Crate export needs the rocrate package",
            hint="pip install 'hpcbridge[provenance]'",
        ) from exc
    crate = ROCrate()
    crate.name = f"hpcbridge job {doc['job_id']} ({doc['name']})"
    crate.description = f"Inputs, outputs and run of job {doc['job_id']}: {doc['state']}"
    crate.license = "https://spdx.org/licenses/CC-BY-4.0"
    ids = {"input": [], "output": []}  # type: dict[str, list[dict[str, str]]]
    for kind, files in (("input", doc["inputs"]), ("output", doc["outputs"])):
        for record in files:
            uri = record["path"] if "://" in record["path"] else f"file://{record['path']}"
            entity = crate.add_file(
                uri,
                fetch_remote=False,
                properties={
                    "name": Path(record["path"]).name,
                    "contentSize": str(record["size"]),
                    "identifier": record["digest"],
                },
            )
            ids[kind].append({"@id": entity.id})
    action = ContextEntity(
        crate,
        f"#job-{doc['job_id']}",
        properties={
            "@type": "CreateAction",
            "name": f"job {doc['job_id']}",
            "description": json.dumps(doc["command"]),
            "object": ids["input"],
            "result": ids["output"],
            "actionStatus": "CompletedActionStatus"
            if doc["state"] == "succeeded"
            else "FailedActionStatus",
        },
    )
    crate.add(action)
    crate.write(out)
    return out
