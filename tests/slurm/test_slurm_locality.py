"""Node-local input caches and placement on the real Slurm test clusters.

Their nodes run on this machine, so each node's cache is its own directory
(``node_cache_dir: .../{node}``). The 22.05 cluster is driven by the command line and by
slurmrestd (v0.0.38), the 24.11 one by slurmrestd (v0.0.41). The tests use the clusters as
they run (``scripts/slurm-cluster [v24] status``) and never reset them; one drains a node
for a while and resumes it, one holds a node's GPUs with a job of its own and cancels it.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.slurm import ClusterConfig, Clusters, SlurmBackend
from hpcbridge.backends.slurm._locality import Holdings
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.service import explain
from hpcbridge.spec import JobSpec, load_spec_document
from hpcbridge.staging import _stage
from hpcbridge.states import JobState

from ._helpers import make_settings
from .conftest import REPO, SLURM24_SKIP

pytestmark = pytest.mark.slurm
SCRIPT = REPO / "scripts" / "slurm-cluster"
PAYLOAD_BYTES = 3 << 20


def _healthy(control: list[str]) -> None:
    status = subprocess.run([*control, "status"], check=False, capture_output=True, timeout=60)
    if status.returncode != 0:
        if os.geteuid() == 0:  # CI runs as root and starts the cluster: never skip there
            pytest.fail(f"the Slurm test cluster is unhealthy: {status.stdout.decode()[-500:]}")
        pytest.skip(f"needs the Slurm test cluster: '{' '.join(control)} start' as root")


def _exports(control: list[str]) -> dict[str, str]:
    out = subprocess.run(
        [*control, "env"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    lines = (line.removeprefix("export ") for line in out.splitlines())
    return dict(line.split("=", 1) for line in lines if "=" in line and "$(" not in line)


def _slurm_env() -> dict[str, str]:
    _healthy([str(SCRIPT)])
    env = dict(os.environ)
    conf = _exports([str(SCRIPT)]).get("SLURM_CONF")
    if conf:
        env["SLURM_CONF"] = conf
    env.pop("SLURM_JWT", None)
    return env


@pytest.fixture
def slurm_env() -> dict[str, str]:
    return _slurm_env()


def _settings(tmp_path: Path, transport: list[str]) -> Settings:
    """A cluster ``lab`` with node caches, reached through the clusters file lines of
    ``transport``."""
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        "clusters:\n  lab:\n    default: true\n    default_partition: batch\n"
        + "".join(f"    {line}\n" for line in transport)
        + f"    log_dir: {tmp_path / 'logs'}\n    queue_interval_s: 0.5\n"
        + f"    node_cache_dir: {tmp_path / 'nodecache' / '{node}'}\n"
        + "    node_cache_max_gb: 1\n"
    )
    home = tmp_path / "home"
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'hpcbridge.db'}",
        clusters_file=clusters,
        required_tags=(),
        poll_interval_s=0.3,
    )


@pytest.fixture
def settings(tmp_path: Path, slurm_env: dict[str, str]) -> Settings:
    conf = slurm_env.get("SLURM_CONF")
    return _settings(tmp_path, ["transport: cli", *([f"slurm_conf: {conf}"] if conf else [])])


def _slurm(argv: list[str], env: dict[str, str]) -> str:
    """What a Slurm command printed (its exit status is not checked)."""
    out = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, timeout=30)
    return out.stdout.strip()


def _until(argv: list[str], env: dict[str, str], done: Callable[[str], bool]) -> bool:
    """Whether ``argv`` printed what ``done`` accepts within a minute."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if done(_slurm(argv, env)):
            return True
        time.sleep(0.5)
    return False


def _wait_responding(node: str, env: dict[str, str]) -> None:
    """A resumed node is "not responding" (``idle*``) until slurmctld next hears from its
    slurmd; leave the cluster healthy for the next test."""
    _until(
        ["sinfo", "-h", "-n", node, "-o", "%T"],
        env,
        lambda state: bool(state) and "*" not in state and "drain" not in state,
    )


def _spec(source: Path, command: str = "", **resources: Any) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "locality",
        "backend": "slurm",
        "command": ["sh", "-c", f"cmp -s in.bin {source}{command}"],
        "resources": {"cpus_per_task": 1, "walltime": "5m", **resources},
        "stage_in": [{"source": str(source), "dest": "in.bin"}],
    }
    return load_spec_document(document, source="test")


def _run(client: Client, spec: JobSpec) -> tuple[str, dict[str, Any], str]:
    """Run one job to success: (its node, its node cache report, its job id)."""
    job = client.submit(spec)
    (done,) = client.wait([job.job_id], timeout_s=180)
    assert done.state is JobState.SUCCEEDED, done.reason
    (attempt,) = client.attempts(job.job_id)
    (node,) = attempt.nodes
    report = json.loads((Path(str(attempt.status_dir)) / "node_cache.json").read_text())
    assert report["node"] == node, report
    return node, report, job.job_id


def _required_nodes(client: Client, job_id: str, env: dict[str, str]) -> str:
    """The node list Slurm holds for the job's attempt (``(null)``: none asked for)."""
    (attempt,) = client.attempts(job_id)
    return _req_node_list(str(attempt.native_id), env)


def _req_node_list(native_id: str, env: dict[str, str]) -> str:
    shown = _slurm(["scontrol", "show", "job", "-o", native_id], env)
    (required,) = [f for f in shown.split() if f.startswith("ReqNodeList=")]
    return required.removeprefix("ReqNodeList=")


def _placed(client: Client, job_id: str) -> list[str]:
    return [e.data["node"] for e in client.events(job_id) if e.kind == "placed"]


def _second_goes_to_the_first_node(client: Client, spec: JobSpec, env: dict[str, str]) -> str:
    """Run ``spec`` twice: the second is submitted with the node where the first left its
    inputs (Slurm holds that node list: not placed by luck), copies nothing there, and its
    events and ``hpcbridge why`` say so. Returns that node."""
    first_node, first, first_id = _run(client, spec)
    assert first["bytes_copied"] == PAYLOAD_BYTES and first["bytes_linked"] == 0
    assert _required_nodes(client, first_id, env) == "(null)"

    second_node, second, second_id = _run(client, spec)
    assert second_node == first_node
    assert _required_nodes(client, second_id, env) == first_node
    assert second["bytes_copied"] == 0 and second["bytes_linked"] == PAYLOAD_BYTES
    (placed,) = [e for e in client.events(second_id) if e.kind == "placed"]
    assert placed.data["node"] == first_node
    sentence = f"placed on {first_node}: holds 1 of 1 inputs, 3.1 of 3.1 MB"
    assert placed.reason == sentence
    assert sentence in explain(client, second_id).actions  # hpcbridge why
    return first_node


def test_a_second_job_goes_to_the_node_holding_its_inputs_and_copies_nothing(
    settings: Settings, slurm_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(PAYLOAD_BYTES))
    client = Client(settings)
    drained: str | None = None
    try:
        drained = _second_goes_to_the_first_node(client, _spec(source), slurm_env)
        subprocess.run(
            ["scontrol", "update", f"nodename={drained}", "state=drain", "reason=test"],
            check=True,
            env=slurm_env,
            timeout=30,
        )
        third_node, third, third_id = _run(client, _spec(source))
        assert third_node != drained  # a drained holder is not waited for
        assert third["bytes_copied"] == PAYLOAD_BYTES
        assert not _placed(client, third_id)
    finally:
        if drained is not None:
            subprocess.run(
                ["scontrol", "update", f"nodename={drained}", "state=resume"],
                check=False,
                env=slurm_env,
                timeout=30,
            )
            _wait_responding(drained, slurm_env)
        client.close()


def test_an_array_goes_to_the_holder_only_while_all_its_tasks_fit_there(
    tmp_path: Path, slurm_env: dict[str, str]
) -> None:
    """One sbatch --array names one node list for all its tasks: with two CPUs a node, an
    array of two one-CPU tasks is pinned to the node holding their inputs, one of three is
    left to Slurm. The backend submits (the tasks are not run: only where Slurm was asked
    to put them is looked at), for a holder Slurm would not pick first."""
    clusters = Clusters((ClusterConfig(name="lab", node_cache_dir="/scratch/{node}"),))
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=clusters, env=slurm_env)
    Holdings(tmp_path / "home" / "slurm" / "lab.node_cache.json").learn(
        {"node": "n3", "holds": {"sha256:aa": PAYLOAD_BYTES}, "at": time.time()}
    )
    manifest = tmp_path / "inputs.json"
    manifest.write_text(json.dumps({"files": [{"digest": "sha256:aa", "size": PAYLOAD_BYTES}]}))
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "arr",
            "backend": "slurm",
            "command": ["true"],
            "resources": {"walltime": "1m"},
        },
        source="test",
    )
    native_ids: list[str] = []
    try:
        for tasks, node in ((2, "n3"), (3, "(null)")):
            key = f"arr{tasks}{os.getpid()}"
            requests = [
                LaunchRequest(
                    f"j{tasks}.{i}",
                    1,
                    f"{key}.{i}",
                    spec,
                    {"HPCBRIDGE_INPUT_MANIFEST": str(manifest)},
                )
                for i in range(tasks)
            ]
            submitted = backend.submit_array(requests)
            native_ids += [s.native_id for s in submitted]
            assert _req_node_list(submitted[0].native_id, slurm_env) == node
            placed = [s.details.get("placement") for s in submitted]
            if node == "(null)":
                assert placed == [None] * tasks
                continue
            assert [p["node"] for p in placed if p] == [node] * tasks
            assert placed[0] is not None and placed[0]["reason"] == (
                "placed on n3: holds 1 of 1 inputs, 3.1 of 3.1 MB; "
                "room there now for 2 array tasks at once"
            )
    finally:
        ids = sorted({n.split("_")[0] for n in native_ids})
        _slurm(["scancel", *ids], slurm_env)
        backend.close()


def test_a_gpu_job_goes_to_the_holder_only_while_its_gpus_are_free(
    settings: Settings, slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """n1-n3 have two fake GPUs each: the holder is chosen while it has one free, passed
    over while a job of the test's own holds both."""
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(PAYLOAD_BYTES))
    gpu_job = _spec(source, ' && test -n "$CUDA_VISIBLE_DEVICES"', gpus=1, gpu_type="fake")
    client = Client(settings)
    holder_job: str | None = None
    try:
        holder = _second_goes_to_the_first_node(client, gpu_job, slurm_env)
        holder_job = _hold_gpus(holder, slurm_env)
        third_node, third, third_id = _run(client, gpu_job)
        assert third_node != holder  # the holder has CPUs free but no GPU
        assert third["bytes_copied"] == PAYLOAD_BYTES
        assert not _placed(client, third_id)
    finally:
        if holder_job is not None:
            _slurm(["scancel", holder_job], slurm_env)
        client.close()


def _hold_gpus(node: str, env: dict[str, str]) -> str:
    """A job of the test's own holding both GPUs of ``node`` (one CPU: the node stays
    usable for CPU jobs), once it runs."""
    argv = ["sbatch", "--parsable", f"--nodelist={node}", "--gres=gpu:fake:2", "-c", "1"]
    argv += ["--mem=100M", "-t", "5", "-o", "/dev/null", "--wrap", "sleep 300"]
    job_id = _slurm(argv, env)
    if not _until(
        ["squeue", "-h", "-j", job_id, "-o", "%T"], env, lambda state: state == "RUNNING"
    ):
        _slurm(["scancel", job_id], env)
        pytest.fail(f"the job holding the GPUs of {node} ({job_id!r}) did not start")
    return job_id


def _holder_over_rest(
    tmp_path: Path,
    control: list[str],
    url: str,
    user: str,
    env: dict[str, str],
    extra: Sequence[str] = (),
) -> str:
    """``_second_goes_to_the_first_node`` through the slurmrestd at ``url`` of the cluster
    of ``control`` (its script, whose ``token`` prints a JWT for ``user``)."""
    rest = [
        "transport: rest",
        f"rest_url: {url}",
        f"rest_user: {user}",
        f"token_command: [{', '.join(control)}, token, '3600']",
        *extra,
    ]
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(PAYLOAD_BYTES))
    client = Client(_settings(tmp_path, rest))
    try:
        return _second_goes_to_the_first_node(client, _spec(source), env)
    finally:
        client.close()


def test_over_slurmrestd_v0_0_38_the_node_list_goes_in_the_job(
    tmp_path: Path, slurm_env: dict[str, str]
) -> None:
    control = [str(SCRIPT)]
    url = _exports(control)["HPCBRIDGE_SLURM_REST_URL"]
    user = pwd.getpwuid(os.geteuid()).pw_name
    assert _holder_over_rest(tmp_path, control, url, user, slurm_env).startswith("n")


@pytest.mark.skipif(os.environ.get("HPCBRIDGE_SLURM24") != "1", reason=SLURM24_SKIP)
def test_over_slurmrestd_v0_0_41_the_node_list_goes_in_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs of the 24.11 cluster run in its root, with its python3 and no blake3: they run
    the node cache and the input check with that Python and this checkout's sources, on
    inputs staged with SHA-256."""
    control = [str(SCRIPT), "v24"]
    _healthy(control)
    exports = _exports(control)
    env = {**os.environ, "PATH": f"{exports['HPCBRIDGE_SLURM24_BIN']}:{os.environ['PATH']}"}
    python = tmp_path / "node-python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={REPO / "src"} exec /usr/bin/python3 "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(_stage, "default_algorithm", lambda: "sha256")
    url = exports["HPCBRIDGE_SLURM24_REST_URL"]
    holder = _holder_over_rest(tmp_path, control, url, "root", env, [f"job_python: {python}"])
    assert holder.startswith("m")
