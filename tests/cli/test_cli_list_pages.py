"""Embedded ``list`` reads through the service layer a page at a time: more jobs than one
page holds are all listed, oldest first, and ``--limit`` takes the newest across pages."""

from __future__ import annotations

import time
from pathlib import Path

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.service import MAX_PAGE
from hpcbridge.spec import load_spec_document
from tests.cli._home import as_json, runner

JOBS = MAX_PAGE + 5


def test_list_pages_through_every_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    client = Client(Settings(home=home))
    try:
        specs = [
            load_spec_document(
                {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": f"j{i}", "command": ["true"]}
            )
            for i in range(JOBS)
        ]
        oldest = [job.job_id for job in client.submit_many(specs[:3], actor="test")]
        time.sleep(0.05)  # the others are newer (one batch shares one time)
        newer = [job.job_id for job in client.submit_many(specs[3:], actor="test")]
    finally:
        client.close()
    run = runner(home, tmp_path)
    everything = as_json(run("list", "--json"))
    assert sorted(job["job_id"] for job in everything) == sorted(oldest + newer)
    assert [job["job_id"] for job in everything[:3]] == sorted(oldest)  # oldest first
    newest = as_json(run("list", "--limit", str(JOBS - 3), "--json"))
    assert sorted(job["job_id"] for job in newest) == sorted(newer)
