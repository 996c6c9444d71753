"""slurmrestd v0.0.41 (Slurm 24.11 style): the version negotiated from the OpenAPI paths,
its documents parsed, and jobs written for it. The golden files are written from the
documented schema (golden/rest_v0.0.41/README.md). Pure: no cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpcbridge.backends.slurm import ClusterConfig
from hpcbridge.backends.slurm._parse import (
    parse_nodes_json,
    parse_rest_partitions,
    parse_sacct_json,
    parse_squeue_json,
)
from hpcbridge.backends.slurm._preflight import parse_rest_licences
from hpcbridge.backends.slurm._rest import RestTransport, offered_versions
from hpcbridge.backends.slurm._rest_versions import choose_version, job_v41, submit_body
from hpcbridge.errors import PermanentBackendError

from .test_slurm_config import jwt
from .test_slurm_render import batch, make_spec

GOLDEN = Path(__file__).parent / "golden"
V41 = GOLDEN / "rest_v0.0.41"


def document(name: str) -> dict[str, Any]:
    loaded = json.loads((V41 / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def paths(name: Path) -> dict[str, Any]:
    return {"paths": dict.fromkeys(name.read_text().split())}


def test_negotiation_picks_the_newest_common_version() -> None:
    assert choose_version(offered_versions(paths(V41 / "openapi_v3_paths.txt"))) == "v0.0.41"
    assert choose_version(offered_versions(paths(GOLDEN / "openapi_v3_paths.txt"))) == "v0.0.38"
    assert choose_version(["v0.0.42", "v0.0.43", "v0.0.44"]) is None
    assert choose_version(["v0.0.38", "v0.0.40"]) == "v0.0.40"


def test_jobs_v41() -> None:
    jobs = {r.key: r for r in parse_squeue_json(document("jobs.json"))}
    assert set(jobs) == {"101", "102", "103", "104_0", "104_2", "104_3", "104_4", "104_5", "107"}
    running = jobs["101"]
    assert (running.state, running.nodes, running.requeue) == ("RUNNING", ("n1",), True)
    assert running.started_at == 1796600001 and running.ended_at is None
    assert running.time_limit_s == 600 and running.alloc_tres["gres/gpu"] == "1"
    assert (jobs["102"].state, jobs["102"].exit_code, jobs["102"].signal) == ("FAILED", 3, None)
    assert (jobs["103"].exit_code, jobs["103"].signal) == (None, 9)
    assert jobs["107"].state == "TIMEOUT" and jobs["107"].signal == 15
    assert jobs["107"].elapsed_s == 70
    pending = jobs["104_3"]
    assert (pending.state, pending.reason, pending.job_id) == ("PENDING", "Licenses", 104)
    assert pending.time_limit_s is None  # infinite
    assert pending.licences == {"fluent": 1}
    task = jobs["104_0"]
    assert (task.job_id, task.array_job_id, task.array_task_id) == (106, 104, 0)


def test_slurmdb_jobs_v41() -> None:
    jobs = {r.key: r for r in parse_sacct_json(document("slurmdb_jobs.json"))}
    assert set(jobs) == {"201", "202", "203", "204_1", "206"}
    gpu = jobs["201"]
    assert (gpu.state, gpu.exit_code, gpu.batch_state) == ("COMPLETED", 0, "COMPLETED")
    assert gpu.alloc_tres["gres/gpu"] == "1" and gpu.max_rss_mb == 50
    assert gpu.elapsed_s == 5 and gpu.time_limit_s == 600
    assert (jobs["202"].state, jobs["202"].exit_code, jobs["202"].reason) == (
        "FAILED",
        3,
        "NonZeroExitCode",
    )
    assert (jobs["203"].state, jobs["203"].signal) == ("TIMEOUT", 15)
    assert jobs["204_1"].job_id == 205
    assert jobs["206"].cancelled_by == "root"


def test_cluster_facts_v41() -> None:
    partitions = {p.name: p for p in parse_rest_partitions(document("partitions.json"))}
    assert partitions["batch"].nodes == ("n1", "n2", "n3")
    assert not any(p.default for p in partitions.values())  # v0.0.41 marks no default
    assert partitions["batch"].max_time_s is None and partitions["batch"].total_cpus == 6
    assert partitions["spot"].max_time_s == 7200 and not partitions["spot"].default
    nodes = {n.name: n for n in parse_nodes_json(document("nodes.json"))}
    assert nodes["n3"].features == ("static", "bigmem")
    assert nodes["n2"].drained and nodes["n2"].state == "idle"
    assert (nodes["n1"].mem_total_mb, nodes["n1"].gres) == (4000, "gpu:fake:2")
    assert parse_rest_licences(document("licenses.json")) == {"fluent": 4}


def test_a_job_written_for_v41() -> None:
    spec = make_spec(
        resources={"nodes": 2, "mem": "2G", "gpus": 1, "gpu_type": "fake", "walltime": "90s"},
        placement={"partition": "spot", "features": ["bigmem"]},
        checkpoint={"grace": 30},
        reservation="maint",
        priority=-3,
    )
    job = batch(spec, environment={"PATH": "/usr/bin:/bin"})
    body = job_v41(job)
    assert (body["minimum_nodes"], body["maximum_nodes"], body["tasks"]) == (2, 2, 2)
    assert body["environment"] == ["PATH=/usr/bin:/bin"]
    assert body["memory_per_node"] == {"set": True, "infinite": False, "number": 2048}
    assert body["time_limit"]["number"] == 2 and body["tres_per_node"] == "gres/gpu:fake:1"
    assert (body["partition"], body["constraints"], body["reservation"], body["nice"]) == (
        "spot",
        "bigmem",
        "maint",
        3,
    )
    assert body["open_mode"] == ["APPEND"] and body["requeue"] is True
    assert (body["kill_warning_signal"], body["kill_warning_flags"]) == ("USR1", ["BATCH_JOB"])
    assert body["kill_warning_delay"]["number"] == 30
    assert submit_body(job, "v0.0.41") == {"job": {**body, "script": job.script}}
    old = submit_body(job, "v0.0.38")
    assert old["script"] == job.script and old["job"]["environment"] == {"PATH": "/usr/bin:/bin"}


def _served(offered: dict[str, Any], seen: list[str], openapi_v3: bool = True) -> RestTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/openapi/v3":
            return httpx.Response(200 if openapi_v3 else 404, json=offered if openapi_v3 else {})
        if request.url.path == "/openapi":
            return httpx.Response(200, json=offered)
        if request.url.path.endswith("/job/submit"):
            return httpx.Response(200, json={"job_id": 4242, "errors": [], "warnings": []})
        return httpx.Response(200, json=document("jobs.json"))

    cluster = ClusterConfig(
        name="c24", transport="rest", rest_url="http://slurm:6820", rest_user="svc"
    )
    client = httpx.Client(base_url="http://slurm:6820", transport=httpx.MockTransport(answer))
    return RestTransport(cluster, env={"SLURM_JWT": jwt(time.time() + 3600)}, client=client)


def test_the_transport_speaks_what_the_server_offers() -> None:
    seen: list[str] = []
    served = _served(paths(V41 / "openapi_v3_paths.txt"), seen)
    assert served.submit(batch(make_spec())) == "4242"
    assert "POST /slurm/v0.0.41/job/submit" in seen
    assert {r.key for r in served.own_jobs()} >= {"101", "104_0"}
    assert "GET /slurm/v0.0.41/jobs" in seen


def test_openapi_without_v3_and_no_common_version() -> None:
    seen: list[str] = []
    assert _served(paths(V41 / "openapi_v3_paths.txt"), seen, openapi_v3=False).version == (
        "v0.0.41"
    )
    assert seen[:2] == ["GET /openapi/v3", "GET /openapi"]
    newer: dict[str, Any] = {"paths": {"/slurm/v0.0.44/jobs/": {}}}
    with pytest.raises(PermanentBackendError, match=r"offers API v0\.0\.44; hpcbridge speaks"):
        _ = _served(newer, []).version


LIVE = GOLDEN / "rest_v0.0.41_live"


def test_live_24_11_documents() -> None:
    """Answers of a live slurmrestd 24.11.5 (golden/rest_v0.0.41_live/README.md)."""
    assert choose_version(offered_versions(paths(LIVE / "openapi_v3_paths.txt"))) == "v0.0.41"
    jobs = {r.key: r for r in parse_squeue_json(json.loads((LIVE / "jobs.json").read_text()))}
    assert set(jobs) == {"1", "2", "3", "5", "4_0", "4_1", "4_2", "4_3", "4_4", "4_5"}
    assert (jobs["1"].state, jobs["1"].nodes, jobs["1"].time_limit_s) == ("RUNNING", ("m1",), None)
    assert (jobs["2"].state, jobs["2"].exit_code, jobs["2"].reason) == (
        "FAILED",
        3,
        "NonZeroExitCode",
    )
    assert (jobs["3"].exit_code, jobs["3"].signal) == (None, 9)
    assert (jobs["5"].state, jobs["5"].exit_code, jobs["5"].time_limit_s) == ("COMPLETED", 0, 60)
    assert (jobs["4_1"].job_id, jobs["4_1"].state) == (7, "RUNNING")
    assert (jobs["4_3"].state, jobs["4_3"].reason, jobs["4_3"].licences) == (
        "PENDING",
        "Licenses",
        {"fluent": 2},
    )
    nodes = parse_nodes_json(json.loads((LIVE / "nodes.json").read_text()))
    assert [(n.name, n.features, n.mem_total_mb) for n in nodes] == [
        ("m1", ("static",), 4000),
        ("m2", ("static",), 4000),
    ]
    partitions = parse_rest_partitions(json.loads((LIVE / "partitions.json").read_text()))
    assert [(p.name, p.nodes, p.total_cpus, p.max_time_s) for p in partitions] == [
        ("batch", ("m1", "m2"), 4, None)
    ]
    licences = parse_rest_licences(json.loads((LIVE / "licenses.json").read_text()))
    assert licences == {"fluent": 4}
