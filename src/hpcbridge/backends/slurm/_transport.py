"""How hpcbridge talks to one cluster: the Transport port and its CLI implementation.

A transport answers in records (``_records``), so the backend never knows whether it spoke
to ``squeue``/``sacct`` on a login node or to slurmrestd (``_rest``). ``commands`` counts the
scheduler calls made, for the batching guarantee (at most one queue call and one accounting
call per poll, whatever the number of jobs). Polling uses ``own_jobs``, filtered on the
controller's side where the transport can; ``queue`` (the whole job table) only serves the
partition view.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol

from hpcbridge.backends.slurm._call import call, call_output
from hpcbridge.backends.slurm._config import ClusterConfig
from hpcbridge.backends.slurm._parse import (
    SACCT_FIELDS,
    json_errors,
    load_json,
    parse_nodes_json,
    parse_sacct_parsable,
    parse_scontrol_partitions,
    parse_squeue_json,
    parse_squeue_text,
    parse_submit_output,
    squeue_format,
)
from hpcbridge.backends.slurm._preflight import parse_scontrol_licences, parse_test_only
from hpcbridge.backends.slurm._records import JobRecord, NodeRecord, PartitionRecord
from hpcbridge.backends.slurm._render import BatchJob, sbatch_argv
from hpcbridge.errors import (
    PermanentBackendError,
    TransientBackendError,
    UncertainSubmissionError,
)

ACCOUNTING_CHUNK = 2000
"""Job ids per sacct call: a poll of 5,000 finished jobs makes 3 calls, not 5,000."""


class Transport(Protocol):
    commands: int

    def submit(self, job: BatchJob) -> str:
        """Submit; return Slurm's job id."""
        ...

    def queue(self) -> list[JobRecord]:
        """Every job slurmctld knows (pending, running, finished in the last MinJobAge)."""
        ...

    def own_jobs(self) -> list[JobRecord]:
        """The jobs of the user hpcbridge submits as (pending, running, finished in the
        last MinJobAge): what polling needs, without the rest of the job table."""
        ...

    def accounting(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """slurmdbd's records of these job ids (array job ids give all their tasks)."""
        ...

    def accounting_by_name(self, names: Sequence[str], since_days: int) -> list[JobRecord]: ...

    def cancel(self, native_id: str, signal: str | None = None) -> None:
        """Cancel, or with ``signal`` (``USR1``) deliver it to the batch script."""
        ...

    def requeue(self, native_id: str) -> None: ...

    def nodes(self) -> list[NodeRecord]: ...

    def partitions(self) -> list[PartitionRecord]: ...

    def update_node(self, node: str, state: str, reason: str | None) -> None: ...

    def licences(self) -> dict[str, int]:
        """Each cluster licence and its total count."""
        ...

    def test_submit(self, job: BatchJob) -> str | None:
        """The scheduler's verdict without submitting: its start estimate (None where the
        transport cannot ask), or a PermanentBackendError saying why it refuses the job."""
        ...

    def close(self) -> None: ...


def array_job_ids(native_ids: Sequence[str]) -> list[str]:
    """Ids to ask sacct for: ``14_5`` and ``14_6`` -> ``14`` once; plain ids as they are."""
    seen: dict[str, None] = {}
    for native_id in native_ids:
        seen.setdefault(native_id.split("_", 1)[0], None)
    return list(seen)


class CliTransport:
    """Slurm's command-line tools on a login node (``SLURM_CONF`` from the cluster config)."""

    def __init__(self, cluster: ClusterConfig, base_env: Mapping[str, str] | None = None) -> None:
        self.cluster = cluster
        self.commands = 0
        self._env = cluster.env(dict(os.environ if base_env is None else base_env))
        self._env["SLURM_TIME_FORMAT"] = "%s"
        self._nodes_argv = ["sinfo", "--json"]

    def _run(self, argv: list[str], *, input: str | None = None, read_only: bool = True) -> str:
        self.commands += 1
        return call(
            argv,
            env=self._env,
            input=input,
            timeout_s=self.cluster.command_timeout_s,
            transient_by_default=read_only,
        )

    def submit(self, job: BatchJob) -> str:
        argv = sbatch_argv(job)
        try:
            out = self._run(argv, input=job.script, read_only=False)
        except PermanentBackendError as exc:
            said = _slurm_said(exc.stderr) or exc.message
            raise PermanentBackendError(
                f"sbatch refused the job: {said}",
                argv=exc.argv,
                returncode=exc.returncode,
                stdout=exc.stdout,
                stderr=exc.stderr,
                hint="fix the spec (partition, licences, resources) or the cluster config",
            ) from exc
        try:
            return parse_submit_output(out)
        except ValueError as exc:  # sbatch exited 0: the job may well be queued
            raise UncertainSubmissionError(
                f"sbatch succeeded but its reply could not be read: {exc}",
                argv=argv,
                stdout=out[:500],
                hint="hpcbridge looks for the job by its name before submitting again",
            ) from exc

    def queue(self) -> list[JobRecord]:
        argv = ["squeue", "--json"]
        out = self._run(argv)
        document = _json_or_transient(argv, out)
        errors = json_errors(document)
        if errors:  # squeue --json exits 0 even when slurmctld cannot be reached
            raise TransientBackendError(
                f"`squeue --json` could not list jobs: {'; '.join(errors)}",
                argv=argv,
                stdout=out[:500],
                hint="slurmctld is down or busy; hpcbridge will ask again",
            )
        return parse_squeue_json(document)

    def own_jobs(self) -> list[JobRecord]:
        """``squeue --me``: slurmctld answers it from the user's jobs alone (RPC
        REQUEST_JOB_USER_INFO), where ``squeue --json`` in 22.05 always loads every job.
        For root (uid 0) squeue loads every job all the same (REQUEST_JOB_INFO)."""
        argv = ["squeue", "--me", "--states=all", "--noheader", f"--Format={squeue_format()}"]
        return parse_squeue_text(self._run(argv))

    def accounting(self, job_ids: Sequence[str]) -> list[JobRecord]:
        records: list[JobRecord] = []
        ids = array_job_ids(job_ids)
        for start in range(0, len(ids), ACCOUNTING_CHUNK):
            chunk = ids[start : start + ACCOUNTING_CHUNK]
            argv = ["sacct", "-P", "-j", ",".join(chunk), "-o", ",".join(SACCT_FIELDS)]
            records += parse_sacct_parsable(self._run(argv))
        return records

    def accounting_by_name(self, names: Sequence[str], since_days: int) -> list[JobRecord]:
        if not names:
            return []
        argv = [
            "sacct",
            "-P",
            f"--starttime=now-{since_days}days",
            f"--name={','.join(names)}",
            "-o",
            ",".join(SACCT_FIELDS),
        ]
        return parse_sacct_parsable(self._run(argv))

    def cancel(self, native_id: str, signal: str | None = None) -> None:
        argv = ["scancel"]
        if signal is not None:
            argv += [f"--signal={signal}", "--batch"]
        self._run([*argv, native_id], read_only=False)

    def requeue(self, native_id: str) -> None:
        self._run(["scontrol", "requeue", native_id], read_only=False)

    def nodes(self) -> list[NodeRecord]:
        """``sinfo --json`` lists nodes in 22.05; 24.11's prints rows grouped by partition and
        state (``"sinfo": [...]``) and ``scontrol show nodes --json``, which 22.05 lacks,
        lists them: the first answer's shape says which this cluster needs."""
        argv = self._nodes_argv
        out = self._run(argv)
        document = _json_or_transient(argv, out)
        errors = json_errors(document)
        if errors:
            raise TransientBackendError(
                f"`{' '.join(argv)}` could not list nodes: {'; '.join(errors)}", argv=argv
            )
        if "nodes" not in document and "sinfo" in document:
            self._nodes_argv = ["scontrol", "show", "nodes", "--json"]
            return self.nodes()
        return parse_nodes_json(document)

    def partitions(self) -> list[PartitionRecord]:
        return parse_scontrol_partitions(self._run(["scontrol", "show", "partition", "-o"]))

    def licences(self) -> dict[str, int]:
        return parse_scontrol_licences(self._run(["scontrol", "show", "licenses", "-o"]))

    def test_submit(self, job: BatchJob) -> str | None:
        argv = ["sbatch", "--test-only", *sbatch_argv(job)[2:]]  # not --parsable
        self.commands += 1
        try:
            _, stderr = call_output(
                argv,
                # 22.05 prints a nonsense start time with SLURM_TIME_FORMAT=%s
                env={**self._env, "SLURM_TIME_FORMAT": "standard"},
                input=job.script,
                timeout_s=self.cluster.command_timeout_s,
                transient_by_default=False,
            )
        except PermanentBackendError as exc:
            said = _slurm_said(exc.stderr) or exc.stderr.strip() or exc.message
            raise PermanentBackendError(
                f"sbatch --test-only refused the job: {said.removeprefix('allocation failure: ')}",
                argv=exc.argv,
                returncode=exc.returncode,
                stderr=exc.stderr,
            ) from exc
        return parse_test_only(stderr)

    def update_node(self, node: str, state: str, reason: str | None) -> None:
        argv = ["scontrol", "update", f"NodeName={node}", f"State={state}"]
        if reason is not None:
            argv.append(f"Reason={reason}")
        self._run(argv, read_only=False)

    def close(self) -> None:
        return None


def _json_or_transient(argv: Sequence[str], out: str) -> dict[str, object]:
    try:
        return load_json(out)
    except ValueError as exc:
        raise TransientBackendError(
            f"`{' '.join(argv)}` printed something that is not JSON: {out[:200]!r}",
            argv=argv,
            stdout=out[:2000],
        ) from exc


def _slurm_said(stderr: str) -> str:
    """The last ``error:`` line of a Slurm tool, without the tool's prefix."""
    lines = [line for line in stderr.splitlines() if "error:" in line]
    if not lines:
        return stderr.strip()
    return lines[-1].split("error:", 1)[1].strip()
