"""The Slurm backend: the Backend port over one or more named clusters.

Per cluster it looks at the queue (``squeue --me`` or REST ``/jobs``) at most every
``queue_interval_s`` for all attempts and answers the polls in between from that look and
the jobs' status files (``_watch``); one accounting call (``sacct`` or REST
``/slurmdb/jobs``) settles those that ended, left the queue or finished; never one call per
job. While a cluster's controller is unreachable the backend backs off (2 s doubling to
60 s) and reports it as a TransientBackendError, so the reconciler marks the backend
unavailable for the cycle and fails nothing; while it answers slowly, the looks are spaced
out (``_watch.SLOW_LOOK_S``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from hpcbridge.backends._protocol import (
    AttemptRef,
    LaunchRequest,
    Observation,
    Phase,
    Submitted,
    split_array_token,
)
from hpcbridge.backends.slurm._assoc import assoc_argv, check_assoc, parse_assoc
from hpcbridge.backends.slurm._call import call
from hpcbridge.backends.slurm._classify import observe
from hpcbridge.backends.slurm._config import ClusterConfig, Clusters, load_clusters
from hpcbridge.backends.slurm._facts import FACTS_TTL_S, FactsCache
from hpcbridge.backends.slurm._hostlist import compress_indices
from hpcbridge.backends.slurm._locality import (
    MANIFEST_VARIABLE,
    NODE_CACHE_VARIABLE,
    Holdings,
    inputs_of,
    node_cache_env,
    read_report,
)
from hpcbridge.backends.slurm._parse import TERMINAL_STATES
from hpcbridge.backends.slurm._passthrough import check_passthrough
from hpcbridge.backends.slurm._placement import Placement, choose_node
from hpcbridge.backends.slurm._preflight import gpus_of, refusals
from hpcbridge.backends.slurm._records import JobRecord, NodeRecord, PartitionRecord
from hpcbridge.backends.slurm._render import (
    SECOND_START_EXIT_CODE,
    SECOND_START_MARK,
    BatchJob,
    job_name,
    render_array_script,
    render_batch,
)
from hpcbridge.backends.slurm._rest import RestTransport
from hpcbridge.backends.slurm._transport import CliTransport, Transport
from hpcbridge.backends.slurm._watch import (
    QueueView,
    RunMark,
    ended_since,
    exact_exit,
    finished,
    read_run_mark,
    wants_look,
)
from hpcbridge.config import Settings
from hpcbridge.errors import (
    ArrayShapeError,
    BackendError,
    HpcbridgeError,
    PermanentBackendError,
    TransientBackendError,
)
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass

log = structlog.get_logger("hpcbridge.backends.slurm")

_OWN_CHOICE_ARGS = ("--nodelist", "-w", "--exclude", "-x", "--gres", "--gpus", "-G")
"""sbatch arguments of a spec that choose nodes or GPUs itself: placement leaves such jobs
alone."""

PYTHON_VARIABLE = "HPCBRIDGE_PYTHON"
"""The interpreter the job script's own steps run with (set where the job has such steps)."""
OOM_MARKERS = ("exceeded memory limit", "Exceeded job memory limit", "oom-kill", "Out Of Memory")
"""What slurmstepd writes to a job's stderr when it kills it for memory."""


@dataclass(slots=True)
class Backoff:
    """Throttled retries of an unreachable controller; reset by the first success."""

    initial_s: float = 2.0
    max_s: float = 60.0
    failures: int = 0
    until: float = 0.0
    last_error: str = ""

    def check(self, cluster: str, now: float) -> None:
        if now < self.until:
            raise TransientBackendError(
                f"cluster {cluster}: Slurm was unreachable {self.failures} time(s) in a row; "
                f"next try in {self.until - now:.0f} s (last error: {self.last_error})",
                hint="hpcbridge keeps every job as it is until Slurm answers again",
            )

    def failed(self, now: float, error: BackendError) -> None:
        self.failures += 1
        self.until = now + min(self.max_s, self.initial_s * 2 ** (self.failures - 1))
        self.last_error = error.message

    def succeeded(self) -> None:
        self.failures, self.until, self.last_error = 0, 0.0, ""


def _array_positions(requests: Sequence[LaunchRequest]) -> tuple[str, list[int]]:
    """The array's key and each task's index: from ``<key>.<index>`` tokens when they all
    share one key and have distinct indices, else the first token and 0..n-1."""
    parsed = [split_array_token(r.token) for r in requests]
    keys = {p[0] for p in parsed if p is not None}
    positions = [p[1] for p in parsed if p is not None]
    if len(positions) == len(requests) and len(keys) == 1 and len(set(positions)) == len(positions):
        return keys.pop(), positions
    return requests[0].token, list(range(len(requests)))


class SlurmBackend:
    """Slurm clusters behind the Backend port (entry point ``slurm``)."""

    name = "slurm"
    parallel_submissions = 4
    """sbatch calls the reconciler may have in flight at once (each waits on slurmctld)."""

    def __init__(
        self,
        settings: Settings,
        wake: Callable[[], None] | None = None,
        *,
        clusters: Clusters | None = None,
        env: Mapping[str, str] | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        self._settings = settings
        self._wake = wake or (lambda: None)
        self._clusters = clusters or load_clusters(settings.resolved_clusters_file)
        self._env = dict(os.environ if env is None else env)
        self._transports: dict[str, Transport] = dict(transports or {})
        self._transport_lock = threading.Lock()
        self._backoff: dict[str, Backoff] = {}
        self._kills: dict[str, FailureClass] = {}
        self._views: dict[str, QueueView] = {}
        self._facts = FactsCache(settings.home / "slurm")
        self._estimates: dict[str, str | None] = {}
        self._verdicts: dict[tuple[Any, ...], tuple[float, str | None, str | None]] = {}
        self._cache_reports_read: set[str] = set()  # tokens whose node cache report is known

    # -- clusters and transports ---------------------------------------------------------------

    @property
    def clusters(self) -> Clusters:
        return self._clusters

    def cluster(self, name: str | None) -> ClusterConfig:
        return self._clusters.get(name)

    def transport(self, cluster: str | None = None) -> Transport:
        config = self._clusters.get(cluster)
        with self._transport_lock:  # submissions may come from several threads
            return self._transport(config)

    def _transport(self, config: ClusterConfig) -> Transport:
        if config.name not in self._transports:
            self._transports[config.name] = (
                RestTransport(config, env=self._env)
                if config.transport == "rest"
                else CliTransport(config, self._env)
            )
        return self._transports[config.name]

    def log_dir(self, cluster: ClusterConfig) -> Path:
        return cluster.log_dir or self._settings.home / "slurm" / cluster.name

    def _cluster_of(self, ref: AttemptRef) -> ClusterConfig:
        return self._clusters.get(ref.details.get("cluster"))

    def _view(self, cluster: str) -> QueueView:
        with self._transport_lock:
            return self._views.setdefault(cluster, QueueView())

    def _guarded(self, cluster: str, now: float) -> Backoff:
        backoff = self._backoff.setdefault(cluster, Backoff())
        backoff.check(cluster, now)
        return backoff

    # -- Backend -------------------------------------------------------------------------------

    def check(self, spec: JobSpec) -> list[str]:
        problems: list[str] = []
        try:
            cluster = self._clusters.get(spec.cluster)
        except HpcbridgeError as exc:
            return [f"cluster: {exc.message}"]
        if spec.placement.spread != "none":
            problems.append(
                "placement.spread: fault-domain spreading is not available for Slurm yet; "
                "remove it or use features"
            )
        if cluster.transport == "rest":
            if spec.placement.max_switches is not None:
                problems.append(
                    f"placement.max_switches: cluster {cluster.name} uses slurmrestd "
                    "v0.0.38, which cannot set --switches; remove it or use transport: cli"
                )
            if spec.deadline is not None:
                problems.append(
                    f"deadline: cluster {cluster.name} uses slurmrestd v0.0.38, which cannot "
                    "set --deadline; remove it or use transport: cli"
                )
            if spec.checkpoint is not None and self._rest_version(cluster) == "v0.0.38":
                problems.append(
                    f"checkpoint: cluster {cluster.name} uses slurmrestd v0.0.38 (Slurm 22.05), "
                    "which refuses the warning signal to the batch script that a checkpoint "
                    "needs (--signal=B:USR1@N); use transport: cli for this cluster, or remove "
                    "checkpoint"
                )
        words = [*(spec.command or ()), *spec.env.values()]
        if any("\0" in word for word in words):
            problems.append("command/env: a value contains a NUL byte; remove it")
        if spec.account is not None or spec.qos is not None:
            problems += self._check_assoc(spec, cluster)
        problems += check_passthrough(spec, cluster.name, cluster.transport, cluster.negative_nice)
        return problems or self.preflight(spec)

    def _rest_version(self, cluster: ClusterConfig) -> str | None:
        """The data parser version slurmrestd and hpcbridge agreed on; None when it cannot
        be asked now (sbatch's answer then has the last word)."""
        transport = self.transport(cluster.name)
        if not isinstance(transport, RestTransport):
            return None
        try:
            return transport.version
        except BackendError as exc:
            log.info("rest_version_unknown", cluster=cluster.name, error=exc.message)
            return None

    def preflight(self, spec: JobSpec) -> list[str]:
        """Ask the cluster whether it can run ``spec`` at all: its partitions, nodes and
        licences (cached, ``_facts``), then ``sbatch --test-only``. Where the cluster cannot
        be asked, nothing is refused: sbatch has the last word."""
        cluster = self._clusters.get(spec.cluster)
        transport = self.transport(cluster.name)
        self._estimates.pop(cluster.name, None)
        try:
            facts = self._facts.get(cluster.name, transport, time.time())
        except BackendError as exc:
            log.info("preflight_skipped", cluster=cluster.name, error=exc.message)
            return []
        problems = refusals(spec, cluster.default_partition, facts)
        if problems:
            return problems
        job = self._render(LaunchRequest("preflight", 0, "preflight", spec, {}), cluster)
        # One --test-only per shape of request and minute: a burst of like jobs asks once.
        shape = (cluster.name, *(getattr(job, name) for name in _SHAPE))
        now = time.time()
        taken_at, refused, estimate = self._verdicts.get(shape, (-FACTS_TTL_S, None, None))
        if now - taken_at >= FACTS_TTL_S:
            refused = None
            try:
                estimate = transport.test_submit(job)
            except PermanentBackendError as exc:
                if not (exc.argv and "--test-only" in exc.argv):
                    log.info("preflight_skipped", cluster=cluster.name, error=exc.message)
                    return []
                refused = f"cluster {cluster.name}: {exc.message}"
            except BackendError as exc:
                log.info("preflight_skipped", cluster=cluster.name, error=exc.message)
                return []
            self._verdicts[shape] = (now, refused, estimate)
        self._estimates[cluster.name] = estimate
        return [refused] if refused else []

    def start_estimate(self, spec: JobSpec) -> str | None:
        """The scheduler's start estimate from the last preflight of ``spec``'s cluster."""
        return self._estimates.get(self._clusters.get(spec.cluster).name)

    def _check_assoc(self, spec: JobSpec, cluster: ClusterConfig) -> list[str]:
        """The account and QOS against the user's associations in slurmdbd. Where that
        cannot be asked (no sacctmgr here, slurmdbd down), sbatch still refuses them."""
        rest_user = cluster.rest_user if cluster.transport == "rest" else None
        user = rest_user or getpass.getuser()
        try:
            out = call(
                assoc_argv(user),
                env=cluster.env(self._env),
                timeout_s=cluster.command_timeout_s,
            )
        except BackendError as exc:
            log.info("association_check_skipped", cluster=cluster.name, error=exc.message)
            return []
        return check_assoc(spec, parse_assoc(out), user=user, cluster=cluster.name)

    def _render(
        self,
        request: LaunchRequest,
        cluster: ClusterConfig,
        *,
        script: str | None = None,
        array: str | None = None,
        log_stem: str | None = None,
    ) -> BatchJob:
        log_dir = self.log_dir(cluster)
        with contextlib.suppress(OSError):  # off the cluster (REST) it must exist there
            log_dir.mkdir(parents=True, exist_ok=True)
        # A job with staged data runs where its inputs are and its outputs go.
        data_dir = request.env.get("HPCBRIDGE_DATA_DIR")
        if data_dir:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        workdir = (
            data_dir
            or cluster.workdir
            or (request.spec.submit_dir if cluster.transport == "cli" else None)
        )
        return render_batch(
            request,
            log_dir=PurePosixPath(log_dir),
            workdir=str(workdir or log_dir),
            default_partition=cluster.default_partition,
            environment={"PATH": cluster.job_path} if cluster.transport == "rest" else None,
            script=script,
            array=array,
            log_stem=log_stem,
            probe=cluster.fabric_probe,
        )

    def submit(self, request: LaunchRequest) -> Submitted:
        cluster = self._clusters.get(request.spec.cluster)
        self._guarded(cluster.name, time.time())
        request, status_dir = self._with_status_dir(request, cluster)
        job = self._render(request, cluster)
        placement = self._place(request, cluster, job)
        if placement is not None:
            job = dataclasses.replace(job, nodelist=placement.node)
        native_id = self.transport(cluster.name).submit(job)
        self._view(cluster.name).submitted([native_id])
        details = self._details(cluster, job, native_id)
        details["status_dir"] = status_dir
        if NODE_CACHE_VARIABLE in request.env:
            details["node_cache"] = True  # its node will report what it holds
        if placement is not None:
            details["placement"] = placement.to_data()
        return Submitted(native_id=native_id, details=details)

    def _holdings(self, cluster: ClusterConfig) -> Holdings:
        return Holdings(self._settings.home / "slurm" / f"{cluster.name}.node_cache.json")

    def _place(
        self, request: LaunchRequest, cluster: ClusterConfig, job: BatchJob, *, tasks: int = 1
    ) -> Placement | None:
        """A usable node whose cache holds most of the job's inputs and could start it now
        (with the GPUs it asks for free there); None leaves the choice to Slurm. ``tasks``
        array tasks of one shape are placed together, only where all of them fit at once:
        ``--nodelist`` applies to every task, and tasks pinned to a node without room
        for them all would queue for it one after another while other nodes idle.

        Never for a burst job (its partition is the decision), a multi-node job (its
        ranks read the shared copy: the node cache step is off for it), or one whose
        sbatch_args name nodes or GPUs (placement cannot weigh what it does not see)."""
        manifest = request.env.get(MANIFEST_VARIABLE)
        spec = request.spec
        if (
            not manifest
            or not cluster.node_cache_dir
            or spec.burst.decided == "burst"
            or job.nodes != 1
            or any(arg.startswith(_OWN_CHOICE_ARGS) for arg in job.extra_args)
        ):
            return None
        inputs = inputs_of(manifest)
        holdings = self._holdings(cluster).read()
        if not any(digest in held for held in holdings.values() for digest in inputs):
            return None  # no node holds any: no need to ask what the nodes are doing
        try:
            nodes = self.transport(cluster.name).nodes()  # now, not the cached facts: drains
        except BackendError as exc:
            log.info("placement_skipped", cluster=cluster.name, error=exc.message)
            return None
        return choose_node(
            inputs,
            holdings,
            nodes,
            partition=job.partition,
            cpus=job.tasks_per_node * job.cpus_per_task,
            mem_mb=job.mem_mb,
            gpus=gpus_of(job.gres or ""),
            tasks=tasks,
        )

    def _place_array(
        self,
        requests: Sequence[LaunchRequest],
        cluster: ClusterConfig,
        batch: BatchJob,
        throttle: int | None,
    ) -> Placement | None:
        """The node for a whole array (``_place``), where every task has the same inputs:
        tasks with inputs of their own would each want another node, and one sbatch
        --array names one node list for all of them."""
        manifest = requests[0].env.get(MANIFEST_VARIABLE)
        if manifest is None:
            return None
        first = inputs_of(manifest)  # read before asking the cluster what its nodes do
        if any(inputs_of(r.env.get(MANIFEST_VARIABLE, "")) != first for r in requests[1:]):
            return None
        at_once = min(len(requests), throttle or len(requests))
        return self._place(requests[0], cluster, batch, tasks=at_once)

    def _learn_node_caches(self, cluster: ClusterConfig, refs: Sequence[AttemptRef]) -> None:
        """Fold new node cache reports of ``refs`` into what each node holds."""
        holdings: Holdings | None = None
        for ref in refs:
            status_dir = ref.details.get("status_dir")
            if not ref.details.get("node_cache") or not status_dir:
                continue
            if ref.token in self._cache_reports_read:
                continue
            report = read_report(str(status_dir))
            if report is None:
                continue  # not started yet
            holdings = holdings or self._holdings(cluster)
            holdings.learn(report)
            self._cache_reports_read.add(ref.token)

    def _with_status_dir(
        self, request: LaunchRequest, cluster: ClusterConfig
    ) -> tuple[LaunchRequest, str]:
        """Where the job side (checkpoint SDK) appends its events: beside the logs, which
        live on storage the cluster shares (and, with the CLI transport, this host reads)."""
        status_dir = str(self.log_dir(cluster) / "status" / request.token)
        env = {**request.env, "HPCBRIDGE_STATUS_DIR": status_dir}
        if cluster.job_python and PYTHON_VARIABLE in env:  # the nodes' Python, not ours
            env[PYTHON_VARIABLE] = cluster.job_python
        if MANIFEST_VARIABLE in env:  # staged inputs: through the node's cache, if it has one
            nodes = request.spec.resources.nodes
            env |= node_cache_env(cluster.node_cache_dir, cluster.node_cache_max_gb, nodes)
        return dataclasses.replace(request, env=env), status_dir

    @staticmethod
    def _details(cluster: ClusterConfig, job: BatchJob, native_id: str) -> dict[str, Any]:
        spot = job.partition is not None and job.partition in cluster.spot_partitions
        return {
            "cluster": cluster.name,
            "slurm_job_id": native_id,
            "name": job.name,
            "stdout": job.stdout,
            "stderr": job.stderr,
            "partition_kind": "spot" if spot else "regular",
        }

    def submit_array(
        self, requests: Sequence[LaunchRequest], *, throttle: int | None = None
    ) -> list[Submitted]:
        """Submit many attempts as ONE ``sbatch --array=0-(n-1)%throttle``.

        Tokens of the form ``<key>.<index>`` with one ``key`` for the array make ``index``
        the task's ``SLURM_ARRAY_TASK_ID`` (the job name is ``hb-<key>``), so ``find`` adopts
        each task after a crash; other tokens number the tasks 0..n-1 in order. All requests
        must ask for the same resources and placement.
        """
        if not requests:
            return []
        _check_uniform(requests)
        with_dirs = [self._with_status_dir(r, self._clusters.get(r.spec.cluster)) for r in requests]
        requests = [r for r, _ in with_dirs]
        first = requests[0]
        cluster = self._clusters.get(first.spec.cluster)
        self._guarded(cluster.name, time.time())
        key, positions = _array_positions(requests)
        spec_line = compress_indices(sorted(positions))
        array = f"{spec_line}%{throttle}" if throttle else spec_line
        script = render_array_script(requests, positions, probe=cluster.fabric_probe)
        batch = self._render(
            LaunchRequest(first.job_id, first.attempt, key, first.spec, first.env),
            cluster,
            script=script,
            array=array,
            log_stem=f"{key}.%a",
        )
        placement = self._place_array(requests, cluster, batch, throttle)
        if placement is not None:
            batch = dataclasses.replace(batch, nodelist=placement.node)
        array_id = self.transport(cluster.name).submit(batch)
        out = []
        for position, (request, status_dir) in zip(positions, with_dirs, strict=True):
            native_id = f"{array_id}_{position}"
            details = self._details(cluster, batch, native_id)
            details["status_dir"] = status_dir
            details["stdout"] = batch.stdout.replace("%a", str(position))
            details["stderr"] = batch.stderr.replace("%a", str(position))
            details["array_task"] = position
            if NODE_CACHE_VARIABLE in request.env:
                details["node_cache"] = True
            if placement is not None:
                details["placement"] = placement.to_data()
            out.append(Submitted(native_id=native_id, details=details))
        self._view(cluster.name).submitted(s.native_id for s in out)
        return out

    def find(self, ref: AttemptRef) -> Submitted | None:
        """The job carrying ``ref.token`` in its name, on the attempt's cluster or any."""
        names: dict[str, int | None] = {job_name(ref.token): None}
        array = split_array_token(ref.token)
        if array is not None:
            names[job_name(array[0])] = array[1]
        candidates = [self._cluster_of(ref)] if ref.details.get("cluster") else list(self._clusters)
        for cluster in candidates:
            transport = self.transport(cluster.name)
            records = [r for r in transport.own_jobs() if r.name in names]
            if not records:
                records = transport.accounting_by_name(list(names), cluster.find_window_days)
                records = [r for r in records if r.name in names]
            for record in sorted(records, key=lambda r: -r.job_id):
                position = names[record.name]
                if position is not None and record.array_task_id != position:
                    continue
                stem = (
                    f"{array[0]}.{array[1]}" if position is not None and array else None
                ) or f"{ref.job_id}.{ref.attempt}"
                log_dir = self.log_dir(cluster)
                self._view(cluster.name).submitted([record.key])
                return Submitted(
                    native_id=record.key,
                    details={
                        "cluster": cluster.name,
                        "slurm_job_id": record.key,
                        "name": record.name,
                        "stdout": str(log_dir / f"{stem}.out"),
                        "stderr": str(log_dir / f"{stem}.err"),
                    },
                )
        return None

    def poll(self, refs: Sequence[AttemptRef], now: float) -> dict[str, Observation]:
        by_cluster: dict[str, list[AttemptRef]] = {}
        for ref in refs:
            by_cluster.setdefault(self._cluster_of(ref).name, []).append(ref)
        observations: dict[str, Observation] = {}
        errors: list[BackendError] = []
        for cluster, group in by_cluster.items():
            try:
                observations.update(self._poll_cluster(self._clusters.get(cluster), group, now))
            except TransientBackendError as exc:
                errors.append(exc)
                log.warning("slurm_cluster_unavailable", cluster=cluster, error=exc.message)
        if errors and not observations:
            raise errors[0]  # nothing answered: the reconciler marks the backend unavailable
        return observations  # refs of an unreachable cluster are left out: "no news"

    def _poll_cluster(
        self, cluster: ClusterConfig, refs: Sequence[AttemptRef], now: float
    ) -> dict[str, Observation]:
        backoff = self._guarded(cluster.name, now)
        transport = self.transport(cluster.name)
        view = self._view(cluster.name)
        marks = self._run_marks(cluster, refs)
        self._learn_node_caches(cluster, refs)
        try:
            looked = view.due(now, cluster.queue_interval_s)
            if looked:
                self._look(transport, view, now)
            ended, accounting = self._settle(transport, view, refs, marks, now)
            interval_s = cluster.queue_interval_s
            if not looked and wants_look(view, refs, marks, ended, accounting, now, interval_s):
                view.event_look_at = now
                self._look(transport, view, now)
                more, extra = self._settle(transport, view, refs, marks, now, skip=accounting)
                ended |= more
                accounting.update(extra)
        except TransientBackendError as exc:
            backoff.failed(now, exc)
            raise
        backoff.succeeded()
        view.forget(ref.native_id for ref in refs if ref.native_id)
        queue = view.records
        observations: dict[str, Observation] = {}
        for ref in refs:
            if not ref.native_id:
                observations[ref.token] = observe(
                    "(none)",
                    None,
                    None,
                    cluster=cluster.name,
                    kill=None,
                    now=now,
                    accounting_wait_s=cluster.accounting_wait_s,
                )
                continue
            expected = str(ref.details.get("name") or job_name(ref.token))
            seen_queue = _named(queue.get(ref.native_id), expected)
            seen_accounting = _named(accounting.get(ref.native_id), expected)
            if seen_queue is None and seen_accounting is None and view.unseen(ref.native_id):
                observations[ref.token] = Observation(
                    phase=Phase.PENDING,
                    reason=f"submitted to Slurm as job {ref.native_id}",
                )
                continue
            if (
                ref.native_id in ended
                and finished(seen_accounting)
                and seen_queue is not None
                and seen_queue.requeue is False
            ):
                seen_queue = None  # the last look predates the end; accounting has it
                seen_accounting = exact_exit(seen_accounting, marks.get(ref.token))
            observations[ref.token] = observe(
                ref.native_id,
                seen_queue,
                seen_accounting,
                cluster=cluster.name,
                kill=self._kill_of(ref),
                now=now,
                accounting_wait_s=cluster.accounting_wait_s,
                usage_wait_s=cluster.usage_wait_s,
                oom_in_stderr=self._oom_in_stderr(ref, seen_queue or seen_accounting),
            )
        self._explain_requeues(transport, refs, queue, observations)
        self._explain_launch_failures(refs, observations)
        self._explain_second_starts(refs, observations)
        return observations

    def _run_marks(
        self, cluster: ClusterConfig, refs: Sequence[AttemptRef]
    ) -> dict[str, RunMark | None]:
        """Each attempt's newest run as its status files tell, where this host sees them."""
        if not (self.log_dir(cluster) / "status").is_dir():
            return {}  # off the cluster (REST without shared storage): the queue alone
        return {
            ref.token: read_run_mark(str(ref.details["status_dir"]))
            for ref in refs
            if ref.native_id and ref.details.get("status_dir")
        }

    @staticmethod
    def _look(transport: Transport, view: QueueView, now: float) -> None:
        """One filtered look at the queue: the jobs of the user hpcbridge submits as."""
        covered = view.covered_now()
        started = time.monotonic()
        records = _index(transport.own_jobs())
        took_s = time.monotonic() - started
        view.looked(records, now, covered, took_s)
        if view.stretch > 1:
            log.warning(
                "slurmctld answered slowly; looking at the queue less often",
                took_s=round(took_s, 2),
                stretch=view.stretch,
            )

    @staticmethod
    def _settle(
        transport: Transport,
        view: QueueView,
        refs: Sequence[AttemptRef],
        marks: Mapping[str, RunMark | None],
        now: float,
        skip: Mapping[str, JobRecord] | None = None,
    ) -> tuple[set[str], dict[str, JobRecord]]:
        """Attempts whose run ended since the last look (status files), and one accounting
        call for those and for the ones that left the queue or finished in it."""
        queue = view.records
        ended: set[str] = set()
        leaving: list[str] = []
        for ref in refs:
            native_id = ref.native_id
            if not native_id:
                continue
            record = queue.get(native_id)
            if ended_since(marks.get(ref.token), record):
                ended.add(native_id)
                view.ended_seen.setdefault(native_id, now)
            gone = record is None and not view.unseen(native_id)
            finished = record is not None and record.state in TERMINAL_STATES
            if native_id in ended or gone or finished:
                leaving.append(native_id)
        leaving = [n for n in leaving if skip is None or n not in skip]
        return ended, (_index(transport.accounting(leaving)) if leaving else {})

    @staticmethod
    def _explain_second_starts(
        refs: Sequence[AttemptRef], observations: dict[str, Observation]
    ) -> None:
        """Slurm started a run a second time (a restarted slurmctld) and the batch script
        refused to run the program again, not knowing how the first start ended: the
        attempt is lost, and retried as the spec says. Where the status directory is out of
        this host's sight, the script's exit status alone says so."""
        for ref in refs:
            seen = observations.get(ref.token)
            if seen is None or seen.phase is not Phase.FAILED:
                continue
            if seen.exit_code != SECOND_START_EXIT_CODE or seen.signal is not None:
                continue
            status_dir = Path(str(ref.details.get("status_dir") or ""))
            if status_dir.is_dir() and not any(status_dir.glob(f"run-*/{SECOND_START_MARK}")):
                continue  # the program's own exit status
            observations[ref.token] = dataclasses.replace(
                seen,
                failure_class=FailureClass.LOST,
                reason="Slurm started this attempt a second time (a restarted slurmctld) "
                "without knowing how its first start ended; the program was not run again",
            )

    def _explain_launch_failures(
        self, refs: Sequence[AttemptRef], observations: dict[str, Observation]
    ) -> None:
        """A job that 'failed' without ever opening its output files never ran: slurmd could
        not launch it (sacct keeps no reason for that). The node's fault, not the program's."""
        for ref in refs:
            seen = observations.get(ref.token)
            if seen is None or seen.failure_class is not FailureClass.APP_ERROR:
                continue
            if seen.signal is not None:
                continue
            stdout, stderr = self.log_paths(ref)
            if stdout is None or stderr is None or not stdout.parent.is_dir():
                continue  # logs on storage this host cannot see: no evidence either way
            if stdout.exists() or stderr.exists():
                continue
            nodes = ", ".join(seen.nodes) or "its node"
            observations[ref.token] = dataclasses.replace(
                seen,
                failure_class=FailureClass.NODE_FAILURE,
                reason=f"Slurm could not launch the job on {nodes}; the program never ran "
                "(no output file was created)",
            )

    @staticmethod
    def _explain_requeues(
        transport: Transport,
        refs: Sequence[AttemptRef],
        queue: Mapping[str, JobRecord],
        observations: dict[str, Observation],
    ) -> None:
        """A job Slurm requeued by itself (more restarts than when last seen) ended its run
        on a node failure when one of its nodes is down now; otherwise it was preempted."""
        requeued = []
        for ref in refs:
            seen = observations.get(ref.token)
            record = queue.get(ref.native_id or "")
            last = ref.details.get("slurm")
            if seen is None or record is None or seen.phase is not Phase.PENDING:
                continue
            if not isinstance(last, Mapping) or not last.get("nodes"):
                continue  # this attempt was never seen running: nothing of it was lost
            if record.restarts > int(last.get("restarts") or 0) and seen.failure_class is None:
                requeued.append((ref, seen))
        if not requeued:
            return
        down = {
            n.name
            for n in transport.nodes()
            if n.state in ("down", "fail", "future")
            or {"NOT_RESPONDING", "FAIL"} & set(n.state_flags)
        }
        for ref, seen in requeued:
            lost = sorted(set(ref.details["slurm"]["nodes"]) & down)
            failure, reason = (
                (FailureClass.NODE_FAILURE, f"requeued by Slurm: node {', '.join(lost)} failed")
                if lost
                else (FailureClass.PREEMPTED, "requeued by Slurm (preempted, or requeued by hand)")
            )
            observations[ref.token] = dataclasses.replace(
                seen, failure_class=failure, reason=reason
            )

    def _kill_of(self, ref: AttemptRef) -> FailureClass | None:
        if ref.token in self._kills:
            return self._kills[ref.token]
        order = ref.details.get("kill")
        if isinstance(order, Mapping) and order.get("failure_class"):
            return FailureClass(str(order["failure_class"]))
        return None

    def _oom_in_stderr(self, ref: AttemptRef, record: JobRecord | None) -> bool:
        """For a job killed by SIGKILL: did slurmstepd say it was for memory?"""
        if record is None or record.state != "FAILED" or record.signal != 9:
            return False
        _, stderr = self.log_paths(ref)
        try:
            with open(stderr or "", "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 65536))
                tail = handle.read().decode(errors="replace")
        except OSError:
            return False
        return any(marker in tail for marker in OOM_MARKERS)

    def kill(self, ref: AttemptRef, failure_class: FailureClass, now: float) -> None:
        self._kills.setdefault(ref.token, self._kill_of(ref) or failure_class)
        if ref.native_id:
            cluster = self._cluster_of(ref).name
            self.transport(cluster).cancel(ref.native_id)
            self._view(cluster).forced = True  # a pending job leaves no status file

    def signal(self, ref: AttemptRef, signal: str) -> None:
        """Deliver ``signal`` (``USR1``, ``SIGTERM``...); the batch script forwards it."""
        if ref.native_id:
            name = signal.upper().removeprefix("SIG")
            self.transport(self._cluster_of(ref).name).cancel(ref.native_id, signal=name)

    def requeue(self, ref: AttemptRef) -> None:
        """Ask Slurm to requeue a running attempt (same job id; it runs again later)."""
        if ref.native_id:
            cluster = self._cluster_of(ref).name
            self.transport(cluster).requeue(ref.native_id)
            self._view(cluster).forced = True

    def log_paths(self, ref: AttemptRef) -> tuple[Path | None, Path | None]:
        stdout, stderr = ref.details.get("stdout"), ref.details.get("stderr")
        if stdout and stderr:
            return Path(str(stdout)), Path(str(stderr))
        log_dir = self.log_dir(self._cluster_of(ref))
        stem = f"{ref.job_id}.{ref.attempt}"
        return log_dir / f"{stem}.out", log_dir / f"{stem}.err"

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()

    # -- cluster view --------------------------------------------------------------------------

    def nodes(self, cluster: str | None = None) -> list[NodeRecord]:
        return self.transport(cluster).nodes()

    def partitions(self, cluster: str | None = None) -> list[PartitionRecord]:
        """Partitions with their queue depth (pending and running jobs, array tasks each)."""
        transport = self.transport(cluster)
        partitions = transport.partitions()
        pending: dict[str, int] = {}
        running: dict[str, int] = {}
        for record in transport.queue():
            for name in record.partition.split(","):
                if record.state == "PENDING":
                    pending[name] = pending.get(name, 0) + 1
                elif record.state in ("RUNNING", "COMPLETING", "CONFIGURING"):
                    running[name] = running.get(name, 0) + 1
        return [
            PartitionRecord(
                p.name,
                p.state,
                p.nodes,
                p.total_cpus,
                p.default,
                p.max_time_s,
                pending=pending.get(p.name, 0),
                running=running.get(p.name, 0),
            )
            for p in partitions
        ]

    def drain(self, node: str, reason: str, cluster: str | None = None) -> None:
        if not reason.strip():
            raise ValueError("draining a node needs a reason, e.g. 'ECC errors'")
        self.transport(cluster).update_node(node, "DRAIN", reason)

    def resume(self, node: str, cluster: str | None = None) -> None:
        self.transport(cluster).update_node(node, "RESUME", None)


_SHAPE = (
    "partition",
    "nodes",
    "tasks_per_node",
    "cpus_per_task",
    "mem_mb",
    "gres",
    "time_min",
    "constraint",
    "licences",
    "switches",
    "deadline",
    "account",
    "qos",
    "reservation",
    "nice",
    "extra_args",
)
"""What sbatch --test-only judges of a batch job (not its name, script or files)."""


def _index(records: Sequence[JobRecord]) -> dict[str, JobRecord]:
    out: dict[str, JobRecord] = {}
    for record in records:
        previous = out.get(record.key)
        if previous is None or record.job_id >= previous.job_id:
            out[record.key] = record
    return out


def _named(record: JobRecord | None, name: str) -> JobRecord | None:
    """``record`` if it is ours: a reused job id (a rebuilt cluster) has another name."""
    return record if record is not None and record.name == name else None


def _check_uniform(requests: Sequence[LaunchRequest]) -> None:
    first = requests[0].spec

    def shape(spec: JobSpec) -> tuple[Any, ...]:
        return (
            spec.resources,
            spec.placement,
            spec.licences,
            spec.checkpoint,
            spec.cluster,
            spec.deadline,
        )

    for request in requests[1:]:
        if shape(request.spec) != shape(first):
            raise ArrayShapeError(
                f"array task {request.job_id} asks for other resources or placement than "
                f"{requests[0].job_id}; one sbatch --array needs them all the same"
            )
