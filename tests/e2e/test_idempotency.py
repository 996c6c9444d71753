"""An idempotency key names one request: retried, it gets the same job; reused with another
spec, it is refused (exit 2) naming the key and the job, and nothing is stored."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.errors import IdempotencyConflictError
from hpcbridge.spec import load_spec_document
from hpcbridge.store import Job, JobFilter
from tests.e2e._cli import RunCli, write_spec

SPEC = """
apiVersion: hpcbridge/v1
kind: Job
name: keyed
command: [/bin/true]
"""


def test_the_same_key_and_spec_give_the_same_job(tmp_path: Path, hpcbridge: RunCli) -> None:
    spec = write_spec(tmp_path, "job.yaml", SPEC)
    first = hpcbridge("submit", str(spec), "--key", "ci-1234")
    again = hpcbridge("submit", str(spec), "--key", "ci-1234")
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout == again.stdout


def test_a_key_reused_with_another_spec_is_refused(tmp_path: Path, hpcbridge: RunCli) -> None:
    spec = write_spec(tmp_path, "job.yaml", SPEC)
    other = write_spec(tmp_path, "other.yaml", SPEC.replace("/bin/true", "/bin/false"))
    job_id = hpcbridge("submit", str(spec), "--key", "ci-1234").stdout.strip()
    refused = hpcbridge("submit", str(other), "--key", "ci-1234")
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "'ci-1234'" in refused.stderr
    assert job_id in refused.stderr
    listed = hpcbridge("list", "--json")
    assert listed.stdout.count('"job_id"') == 1  # nothing else stored


@pytest.mark.parametrize("same_spec", [True, False])
def test_concurrent_requests_with_one_key_store_one_job(tmp_path: Path, same_spec: bool) -> None:
    settings = Settings(home=tmp_path / "home")
    Client(settings).store.close()  # migrate once, before the race
    results: list[Job | Exception] = []

    def request(command: str) -> None:
        client = Client(settings)
        spec = load_spec_document(
            {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "k", "command": [command]}
        )
        try:
            results.append(client.submit(spec, idempotency_key="race"))
        except IdempotencyConflictError as exc:
            results.append(exc)
        finally:
            client.store.close()

    commands = ["/bin/true"] * 8 if same_spec else ["/bin/true", "/bin/false"] * 4
    threads = [threading.Thread(target=request, args=(c,)) for c in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client = Client(settings)
    stored = client.store.list_jobs(JobFilter())
    client.store.close()
    assert len(stored) == 1
    jobs = [r for r in results if isinstance(r, Job)]
    assert {j.job_id for j in jobs} == {stored[0].job_id}
    refused = [r for r in results if isinstance(r, IdempotencyConflictError)]
    if same_spec:
        assert refused == []
    else:  # the requests whose command differs from the stored job's
        assert len(refused) == 4
        assert all(e.job_id == stored[0].job_id for e in refused)
