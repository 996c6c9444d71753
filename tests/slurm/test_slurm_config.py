"""Clusters file, backoff, submission errors and REST details (real cluster where it matters)."""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from hpcbridge.backends import AttemptRef, LaunchRequest
from hpcbridge.backends.slurm import Backoff, ClusterConfig, Clusters, SlurmBackend, load_clusters
from hpcbridge.backends.slurm._records import JobRecord, NodeRecord, PartitionRecord
from hpcbridge.backends.slurm._render import BatchJob
from hpcbridge.backends.slurm._rest import RestTransport, token_expiry
from hpcbridge.backends.slurm._transport import CliTransport
from hpcbridge.errors import (
    ConfigError,
    NotFoundError,
    PermanentBackendError,
    TransientBackendError,
)
from hpcbridge.states import AttemptState, FailureClass, JobState

from ._helpers import cluster_config, make_settings, scancel
from ._rig import Rig, slurm_spec
from .conftest import SlurmCluster

pytestmark = pytest.mark.slurm


# -- the clusters file ----------------------------------------------------------------------


def test_no_file_means_one_cli_cluster(tmp_path: Path) -> None:
    clusters = load_clusters(tmp_path / "missing.yaml")
    assert clusters.names == ["default"]
    assert clusters.get(None).transport == "cli"


def test_clusters_file(tmp_path: Path) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text(
        "clusters:\n"
        "  onprem: {default_partition: batch, log_dir: /shared/logs}\n"
        "  cloud:\n"
        "    default: true\n"
        "    transport: rest\n"
        "    rest_url: http://head:6820\n"
        "    rest_user: svc\n"
        "    token_command: scontrol token lifespan=600\n"
    )
    clusters = load_clusters(path)
    assert clusters.names == ["onprem", "cloud"]
    assert clusters.default.name == "cloud"
    assert clusters.get("cloud").token_command == ("scontrol", "token", "lifespan=600")
    assert clusters.get("onprem").log_dir == Path("/shared/logs")
    with pytest.raises(
        NotFoundError, match=r"unknown Slurm cluster 'x'; configured in .*: onprem, cloud"
    ):
        clusters.get("x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters:\n  c: {transport: rest}\n", r"clusters\.c\..*rest_url and rest_user"),
        ("clusters:\n  c: {transprt: cli}\n", r"clusters\.c\.transprt"),
        ("clusters: []\n", "expected a mapping"),
        ("clusters:\n  a: {default: true}\n  b: {default: true}\n", "more than one"),
        ("clusters: [\n", "cannot read"),
    ],
)
def test_bad_clusters_files_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_clusters(path)


def test_the_cli_environment_leaks_nothing_into_jobs() -> None:
    config = ClusterConfig(slurm_conf=Path("/etc/slurm/x.conf"))
    env = config.env(
        {
            "PATH": "/bin",
            "HPCBRIDGE_DATABASE_URL": "postgresql://secret",
            "SBATCH_PARTITION": "wrong",
            "SLURM_JWT": "token",
            "SLURM_JOB_ID": "5",
            "SLURM_CONF": "/other",
        }
    )
    assert env == {"PATH": "/bin", "SLURM_CONF": "/etc/slurm/x.conf"}


# -- backoff and check ----------------------------------------------------------------------


def test_backoff_doubles_up_to_a_cap_and_resets() -> None:
    backoff = Backoff(initial_s=2, max_s=10)
    error = TransientBackendError("down")
    backoff.check("c", 0)
    waits = []
    for _ in range(5):
        backoff.failed(100, error)
        waits.append(backoff.until - 100)
    assert waits == [2, 4, 8, 10, 10]
    with pytest.raises(TransientBackendError, match="unreachable 5 time"):
        backoff.check("c", 105)
    backoff.check("c", 111)
    backoff.succeeded()
    backoff.check("c", 100)


def test_check_names_what_this_backend_cannot_honour(tmp_path: Path) -> None:
    clusters = Clusters(
        (
            ClusterConfig(name="a"),
            ClusterConfig(
                name="r", transport="rest", rest_url="http://x", rest_user="u", token="t"
            ),
        )
    )
    backend = SlurmBackend(make_settings(tmp_path), clusters=clusters)
    assert backend.check(slurm_spec()) == []
    assert backend.check(slurm_spec(cluster="nope"))[0].startswith("cluster: unknown Slurm cluster")
    problems = backend.check(
        slurm_spec(cluster="r", deadline="2030-01-01T00:00:00Z", placement={"max_switches": 1})
    )
    assert [p.split(":")[0] for p in problems] == ["placement.max_switches", "deadline"]
    staged = slurm_spec(stage_in=[{"source": "s3://b/k", "dest": "k"}])
    assert backend.check(staged) == []  # staged by the control plane before sbatch


def test_a_checkpoint_on_slurmrestd_v0_0_38_is_refused_before_anything_is_stored(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    # slurmrestd 22.05 answers HTTP 400 "Invalid SIGNAL specification" to --signal=B:USR1@N,
    # which a checkpoint needs: say so at submission instead of failing the job at sbatch.
    configs = (cluster_config(slurm_cluster, "cli"), cluster_config(slurm_cluster, "rest"))
    clusters = Clusters(configs)
    backend = SlurmBackend(make_settings(tmp_path), clusters=clusters)
    checkpointed = {"checkpoint": {"dir": str(tmp_path / "ckpt")}, "resources": {"walltime": "5m"}}
    try:
        refused = backend.check(slurm_spec(cluster="test-rest", **checkpointed))
        assert [p.split(":")[0] for p in refused] == ["checkpoint"]
        assert "transport: cli" in refused[0] and "v0.0.38" in refused[0]
        assert backend.check(slurm_spec(cluster="test-cli", **checkpointed)) == []
        assert backend.check(slurm_spec(cluster="test-rest")) == []  # no checkpoint, no refusal
    finally:
        backend.close()


# -- submission errors on the real cluster --------------------------------------------------


@pytest.mark.parametrize("transport", ["cli", "rest"])
def test_a_rejected_submission_fails_the_job_with_slurms_words(
    transport: str, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    config = cluster_config(slurm_cluster, transport, log_dir=tmp_path / "logs")
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=Clusters((config,)))
    rig = Rig(backend, tmp_path)
    job_id = rig.submit(slurm_spec(name="bad", placement={"partition": "nosuch"}))
    job = rig.wait_done(job_id, timeout_s=30)
    assert (job.state, job.failure_class) == (JobState.FAILED, FailureClass.SPEC_ERROR)
    assert job.reason is not None
    assert "refused the job" in job.reason
    assert "nvalid partition" in job.reason
    backend.close()


class _TimesOutAfterSubmitting:
    """A transport whose sbatch reaches slurmctld but whose answer is lost (a timeout)."""

    def __init__(self, inner: CliTransport) -> None:
        self.inner = inner
        self.commands = 0
        self.submitted: list[str] = []

    def submit(self, job: BatchJob) -> str:
        self.submitted.append(self.inner.submit(job))
        raise TransientBackendError("`sbatch` timed out after 60 s")

    def queue(self) -> list[JobRecord]:
        return self.inner.queue()

    def own_jobs(self) -> list[JobRecord]:
        return self.inner.own_jobs()

    def accounting(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return self.inner.accounting(job_ids)

    def accounting_by_name(self, names: Sequence[str], since_days: int) -> list[JobRecord]:
        return self.inner.accounting_by_name(names, since_days)

    def cancel(self, native_id: str, signal: str | None = None) -> None:
        self.inner.cancel(native_id, signal)

    def requeue(self, native_id: str) -> None:
        self.inner.requeue(native_id)

    def nodes(self) -> list[NodeRecord]:
        return self.inner.nodes()

    def partitions(self) -> list[PartitionRecord]:
        return self.inner.partitions()

    def update_node(self, node: str, state: str, reason: str | None) -> None:
        self.inner.update_node(node, state, reason)

    def licences(self) -> dict[str, int]:
        return self.inner.licences()

    def test_submit(self, job: BatchJob) -> str | None:
        return self.inner.test_submit(job)

    def close(self) -> None:
        self.inner.close()


def test_a_timed_out_submission_is_adopted_not_repeated(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """The reconciler's submitter looks for an uncertain submission by its token (the job
    name) before it would submit again, on the real cluster."""
    config = cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs")
    flaky = _TimesOutAfterSubmitting(CliTransport(config))
    backend = SlurmBackend(
        make_settings(tmp_path / "home"),
        clusters=Clusters((config,)),
        transports={config.name: flaky},
    )
    rig = Rig(backend, tmp_path)
    try:
        job_id = rig.submit(slurm_spec(command=["sleep", "30"]))
        rig.cycle()
        reason = rig.job(job_id).reason or ""
        assert reason.startswith("slurm unavailable, will retry"), reason
        backend._backoff.clear()  # the test does not wait out the backoff
        rig.cycle()
        [attempt] = rig.attempts(job_id)
        assert flaky.submitted == [attempt.native_id]
        assert attempt.state in (AttemptState.SUBMITTED, AttemptState.RUNNING)
    finally:
        scancel(slurm_cluster, flaky.submitted)
        backend.close()


def test_missing_slurm_tools_are_a_clear_permanent_error(tmp_path: Path) -> None:
    transport = CliTransport(ClusterConfig(), {"PATH": str(tmp_path)})
    with pytest.raises(PermanentBackendError, match="cannot run 'squeue'") as caught:
        transport.queue()
    assert caught.value.hint is not None
    assert "transport: rest" in caught.value.hint


# -- REST -----------------------------------------------------------------------------------


@pytest.fixture
def rest(slurm_cluster: SlurmCluster) -> Iterator[Callable[..., RestTransport]]:
    made: list[RestTransport] = []

    def make(**overrides: Any) -> RestTransport:
        made.append(RestTransport(cluster_config(slurm_cluster, "rest", **overrides), env={}))
        return made[-1]

    yield make
    for transport in made:
        transport.close()


def test_rest_detects_the_api_versions(rest: Callable[..., RestTransport]) -> None:
    transport = rest()
    assert transport.version == "v0.0.38"
    assert transport.queue() is not None


def test_rest_refuses_a_server_without_a_common_version() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"paths": {"/slurm/v0.0.42/jobs": {}}})

    config = ClusterConfig(
        transport="rest", rest_url="http://x", rest_user="u", token=jwt(time.time() + 3600)
    )
    client = httpx.Client(base_url="http://x", transport=httpx.MockTransport(answer))
    transport = RestTransport(config, env={}, client=client)
    with pytest.raises(
        PermanentBackendError,
        match=r"offers API v0\.0\.42; hpcbridge speaks v0\.0\.38, v0\.0\.40, v0\.0\.41",
    ):
        transport.queue()
    transport.close()


def jwt(exp: float) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(exp), 'sun': 'root'})}.c2ln"


def test_rest_with_a_bad_or_expired_token_says_so(rest: Callable[..., RestTransport]) -> None:
    # slurmrestd 22.05 answers a bad token like a dead slurmctld (HTTP 500), so hpcbridge
    # looks at the token itself before using it.
    with pytest.raises(PermanentBackendError, match="is not a JWT"):
        rest(token="not-a-jwt", token_command=None).queue()
    with pytest.raises(PermanentBackendError, match="token in the clusters file expires"):
        rest(token=jwt(time.time() - 10), token_command=None).queue()


def test_rest_renews_an_expiring_token(rest: Callable[..., RestTransport]) -> None:
    transport = rest()
    transport._token, transport._token_at = jwt(time.time() + 5), time.monotonic()
    assert isinstance(transport.queue(), list)  # renewed from token_command first
    assert transport._token is not None
    expiry = token_expiry(transport._token)
    assert expiry is not None
    assert expiry > time.time() + 600


def test_rest_unreachable_is_transient(rest: Callable[..., RestTransport]) -> None:
    transport = rest(rest_url="http://127.0.0.1:9", command_timeout_s=5)
    with pytest.raises(TransientBackendError, match=r"unreachable|failed"):
        transport.queue()


def test_rest_cannot_requeue_and_says_what_to_do(rest: Callable[..., RestTransport]) -> None:
    with pytest.raises(PermanentBackendError, match="cannot requeue") as caught:
        rest().requeue("1")
    assert caught.value.hint is not None
    assert "scontrol requeue" in caught.value.hint


def test_requeue_and_signal_through_the_cli(tmp_path: Path, slurm_cluster: SlurmCluster) -> None:
    out = tmp_path / "signals.txt"
    trap = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGUSR2, lambda s, f: open(sys.argv[1], 'a').write('usr2\\n'))\n"
        "time.sleep(120)\n"
    )
    config = cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs")
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=Clusters((config,)))
    spec = slurm_spec(command=[sys.executable, "-c", trap, str(out)], checkpoint={})
    request = LaunchRequest("jsig", 1, f"sig{time.time_ns()}", spec, {})
    submitted = backend.submit(request)
    ref = AttemptRef("jsig", 1, request.token, submitted.native_id, submitted.details)
    try:
        deadline = time.monotonic() + 30
        while backend.poll([ref], time.time())[ref.token].phase.value != "running":
            assert time.monotonic() < deadline
            time.sleep(0.3)
        time.sleep(1)  # the program sets its handler
        backend.signal(ref, "SIGUSR2")
        deadline = time.monotonic() + 15
        while not (out.exists() and out.read_text() == "usr2\n"):
            assert time.monotonic() < deadline, "the job never got SIGUSR2"
            time.sleep(0.2)
        backend.requeue(ref)
        deadline = time.monotonic() + 60
        while True:
            seen = backend.poll([ref], time.time())[ref.token]
            if seen.phase.value == "pending" and seen.reason and seen.reason.startswith("requeued"):
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.5)
        backend.kill(ref, FailureClass.CANCELLED, time.time())
    finally:
        scancel(slurm_cluster, [submitted.native_id])
        backend.close()


def test_an_unreachable_cluster_leaves_its_attempts_without_news(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """Two clusters: the one that answers is observed, the other's attempts get no news
    (the reconciler then changes nothing for them); only when none answers does poll raise."""
    good = cluster_config(slurm_cluster, "cli", log_dir=tmp_path / "logs")
    dead = cluster_config(
        slurm_cluster, "rest", name="dead", rest_url="http://127.0.0.1:9", command_timeout_s=5
    )
    backend = SlurmBackend(make_settings(tmp_path / "home"), clusters=Clusters((good, dead)))
    request = LaunchRequest("jtwo", 1, f"two{time.time_ns()}", slurm_spec(), {})
    submitted = backend.submit(request)
    try:
        here = AttemptRef("jtwo", 1, request.token, submitted.native_id, submitted.details)
        there = AttemptRef("jdead", 1, "dead-token", "1", {"cluster": "dead"})
        seen = backend.poll([here, there], time.time())
        assert set(seen) == {here.token}
        with pytest.raises(TransientBackendError):
            backend.poll([there], time.time())
    finally:
        scancel(slurm_cluster, [submitted.native_id])
        backend.close()
