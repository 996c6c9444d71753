"""``hpcbridge provenance JOB`` and ``hpcbridge rerun JOB``."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hpcbridge.cli._setup import open_client
from hpcbridge.provenance import pinned_spec, to_prov_json, write_ro_crate
from hpcbridge.spec import load_spec_document

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    PROV = "prov-json"
    RO_CRATE = "ro-crate"


def provenance(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    export: Annotated[
        Format,
        typer.Option("--format", help="text, json, prov-json (W3C PROV) or ro-crate."),
    ] = Format.TEXT,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Directory for --format ro-crate.")
    ] = None,
) -> None:
    """What went into a job and came out of it, with digests, and how it ran."""
    with open_client() as client:
        doc = client.provenance(job_id)
    if export is Format.RO_CRATE:
        if output is None:
            err.print("error: --format ro-crate writes a directory; give it with --output DIR")
            raise typer.Exit(2)
        print(write_ro_crate(doc, output))
    elif export is Format.PROV:
        print(json.dumps(to_prov_json(doc), indent=2))
    elif json_output or export is Format.JSON:
        print(json.dumps(doc, indent=2, default=str))
    else:
        _show(doc)


def _show(doc: dict[str, Any]) -> None:
    origin = doc["origin"]
    git = origin.get("git")
    out.print(f"job {doc['job_id']} ({doc['name']}): {doc['state']}", highlight=False)
    out.print(f"command: {json.dumps(doc['command'])}", highlight=False)
    code = f"git {git['commit'][:12]}{' (dirty)' if git['dirty'] else ''}" if git else "no git"
    out.print(
        f"submitted with hpcbridge {origin.get('hpcbridge_version', '?')}, {code}",
        highlight=False,
    )
    container = doc.get("container")
    if container:
        out.print(f"container: {container['image']} {container['digest']}", highlight=False)
    for kind in ("inputs", "outputs"):
        out.print(f"{kind}: {len(doc[kind])}")
        for record in doc[kind]:
            out.print(
                f"  {record['digest']}  {record['size']:>12}  {record['path']}", highlight=False
            )
    for attempt in doc["attempts"]:
        nodes = ",".join(attempt["nodes"]) or "-"
        out.print(
            f"attempt {attempt['number']}: {attempt['backend']} {attempt['native_id']} on {nodes},"
            f" exit {attempt['exit_code']}, {attempt['failure_class'] or 'ok'}",
            highlight=False,
        )


def rerun(
    job_id: Annotated[str, typer.Argument(help="The job to run again.")],
) -> None:
    """Submit a job again with the same spec, its inputs verified against the digests they
    had: a changed input fails the new job's stage-in with checksum_mismatch; a container
    job runs in the same image digest (refused if the image changed)."""
    with open_client() as client:
        doc = client.provenance(job_id)
        document, loose = pinned_spec(doc)
        spec = load_spec_document(document, source=f"job {job_id}")
        job = client.submit(spec)
        client.reconcile_once()
        client.hand_over()
    for source in loose:
        err.print(f"note: {source} is a tree; its files are staged and recorded afresh")
    print(job.job_id)
