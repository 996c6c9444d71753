"""JobSpec + LaunchRequest -> a batch job for Slurm: pure functions, no I/O.

``render_batch`` decides every option once, as a ``BatchJob``; ``sbatch_argv`` and
``rest_job`` write it for the CLI and for slurmrestd. The batch script runs the job's argv
(each word ``shlex.quote``-d: no user string is ever parsed by the shell) as a child, forwards
the checkpoint/preemption signals to it, and exits with its status so that Slurm records it.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from hpcbridge.backends import gpu_sampler
from hpcbridge.backends._protocol import LaunchRequest
from hpcbridge.backends.slurm import fabric_probe
from hpcbridge.backends.slurm._locality import node_cache_step
from hpcbridge.containers import shell_wrap
from hpcbridge.spec import JobSpec

NAME_PREFIX = "hb-"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORWARDED = ("HUP", "INT", "TERM", "USR1", "USR2")


def job_name(token: str) -> str:
    """The Slurm job name of an attempt: its token, so an orphan can be found after a crash."""
    return NAME_PREFIX + token


def token_of(name: str) -> str | None:
    return name[len(NAME_PREFIX) :] if name.startswith(NAME_PREFIX) else None


@dataclass(frozen=True, slots=True)
class BatchJob:
    """Every choice about one submission, before it is written for a transport."""

    name: str
    comment: str
    script: str
    nodes: int
    tasks_per_node: int
    cpus_per_task: int
    stdout: str
    stderr: str
    workdir: str
    mem_mb: int | None = None
    gres: str | None = None
    time_min: int | None = None
    partition: str | None = None
    constraint: str | None = None
    licences: str | None = None
    switches: int | None = None
    deadline: str | None = None
    requeue: bool = False
    signal: str | None = None
    """``B:USR1@60``: the checkpoint signal, to the batch script, ``grace`` s before the end."""
    array: str | None = None
    account: str | None = None
    qos: str | None = None
    reservation: str | None = None
    nice: int | None = None
    nodelist: str | None = None
    """The node holding the job's inputs (``_placement``): ``--nodelist``, or the node
    list of a REST submission (``nodelist`` in v0.0.38, ``required_nodes`` later)."""
    extra_args: tuple[str, ...] = ()
    """The spec's ``sbatch_args`` (CLI only), checked against what hpcbridge sets."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Variables for the job's environment over REST (the CLI exports the login one)."""


def gres_of(gpus: int, gpu_type: str | None) -> str | None:
    if gpus <= 0:
        return None
    return f"gpu:{gpu_type}:{gpus}" if gpu_type else f"gpu:{gpus}"


def walltime_minutes(walltime_s: float | None) -> int | None:
    """Slurm counts time limits in whole minutes: round up, at least 1."""
    if walltime_s is None:
        return None
    return max(1, math.ceil(walltime_s / 60))


def _check_env_names(env: Mapping[str, str]) -> None:
    for name in env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"environment variable name {name!r} is not valid")


def _exports(env: Mapping[str, str]) -> list[str]:
    _check_env_names(env)
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def quote_argv(argv: Sequence[str]) -> str:
    """argv as one shell line that gives the program exactly these words."""
    for word in argv:
        if "\0" in word:
            raise ValueError("an argument contains a NUL byte, which no program can receive")
    return " ".join(shlex.quote(word) for word in argv)


def _program(spec: JobSpec) -> list[str]:
    """Lines that set ``set -- argv`` for the job: the command, or a script file from text."""
    if spec.command is not None:
        return [f"set -- {quote_argv(spec.command)}"]
    text = spec.script or ""
    if not text.startswith("#!"):
        text = "#!/bin/sh\n" + text
    return [
        '_hb_script=$(mktemp "${TMPDIR:-/tmp}/hpcbridge-script.XXXXXX") || exit 1',
        "trap 'rm -f \"$_hb_script\"' EXIT",
        f'printf %s {shlex.quote(text)} >"$_hb_script"',
        'chmod 700 "$_hb_script"',
        'set -- "$_hb_script"',
    ]


SECOND_START_EXIT_CODE = 76
"""The batch script's exit status when Slurm started a run of it a second time and the
first run's outcome is unknown: nothing ran; the attempt is ``lost``."""
SECOND_START_MARK = "second-start"

_RUNNER = f"""\
# At most one run of the program per run of this attempt. Slurm numbers its own requeues
# (SLURM_RESTART_COUNT); a second start with the same number is a restarted slurmctld
# starting again what it had not saved as started or ended. Such a start runs nothing: it
# reports the first run's exit status, or marks the run's outcome unknown.
_hb_run=
if [ -n "${{HPCBRIDGE_STATUS_DIR:-}}" ] && mkdir -p "$HPCBRIDGE_STATUS_DIR" 2>/dev/null; then
    _hb_run="$HPCBRIDGE_STATUS_DIR/run-${{SLURM_RESTART_COUNT:-0}}"
    if ! mkdir "$_hb_run" 2>/dev/null; then
        if [ -s "$_hb_run/exit" ]; then
            echo "hpcbridge: Slurm started this run again after it ended; not running it twice" >&2
            exit "$(cat "$_hb_run/exit")"
        fi
        echo "hpcbridge: Slurm started this run again; its first start's outcome is unknown" >&2
        : >"$_hb_run/{SECOND_START_MARK}"
        exit {SECOND_START_EXIT_CODE}
    fi
fi
# Run the job as a child and forward signals to it (Slurm sends --signal=B:... and
# preemption notices to this script only); exit with the child's status.
_hb_forward() {{ _hb_got=1; [ -n "${{_hb_pid:-}}" ] && kill -s "$1" "$_hb_pid" 2>/dev/null; }}
for _hb_sig in {" ".join(_FORWARDED)}; do trap "_hb_forward $_hb_sig" "$_hb_sig"; done
( trap - INT QUIT; exec "$@" ) &
_hb_pid=$!
while :; do
    _hb_got=0
    wait "$_hb_pid"
    _hb_status=$?
    [ "$_hb_got" = 1 ] || break
    kill -0 "$_hb_pid" 2>/dev/null || {{ wait "$_hb_pid" 2>/dev/null; _hb_last=$?;
        [ "$_hb_last" = 127 ] || _hb_status=$_hb_last; break; }}
done
if [ -n "$_hb_run" ]; then
    echo "$_hb_status" >"$_hb_run/exit.tmp" && mv -f "$_hb_run/exit.tmp" "$_hb_run/exit"
fi
exit "$_hb_status"
"""


@functools.cache
def _source(module: ModuleType) -> str:
    return Path(str(module.__file__)).read_text()


def monitor_lines(spec: JobSpec) -> list[str]:
    """Job-side measurements, run with the node's own ``python3`` (they need nothing else):
    for a multi-node job, the fabric latency between its first two nodes (M7), bounded in
    time, before it starts; for a GPU job, utilisation samples in the background (M6).
    Neither can fail or delay the job by more than the probe's bound."""
    lines = []
    if spec.resources.nodes >= 2:
        lines += [
            f"    _hb_probe={shlex.quote(_source(fabric_probe))}",
            "    timeout 30 srun --overlap --nodes=2 --ntasks=2 --ntasks-per-node=1 "
            "--output=/dev/null --error=/dev/null "
            'python3 -c "$_hb_probe" "$HPCBRIDGE_STATUS_DIR" || true',
            "    unset _hb_probe",
        ]
    if spec.resources.gpus > 0:
        lines += [
            f"    python3 -c {shlex.quote(_source(gpu_sampler))} "
            f'"$HPCBRIDGE_STATUS_DIR" {gpu_sampler.INTERVAL_S:g} $$ >/dev/null 2>&1 </dev/null &',
        ]
    if not lines:
        return []
    return [
        'if [ -n "${HPCBRIDGE_STATUS_DIR:-}" ] && command -v python3 >/dev/null 2>&1; then',
        *lines,
        "fi",
    ]


def render_script(request: LaunchRequest, *, probe: bool = True) -> str:
    """The batch script of one attempt."""
    spec = request.spec
    lines = [
        "#!/bin/bash",
        f"# hpcbridge job {request.job_id} attempt {request.attempt}"
        f" ({_comment_safe(spec.name)}), token {request.token}. Generated; do not edit.",
        *_exports({**spec.env, **request.env}),
        *(monitor_lines(spec) if probe else []),
        *_program(spec),
        *shell_wrap(spec),  # the container's launcher runs after the inputs are verified
        *_verify_inputs(request.env),
        *node_cache_step(request.env),  # before the check: it checks the node's copies
        _RUNNER,
    ]
    return "\n".join(lines)


def _verify_inputs(env: Mapping[str, str]) -> list[str]:
    """Staged inputs are re-hashed on the node right before the command: the check runs
    the command in its place (exec) only if every input still matches its manifest."""
    if "HPCBRIDGE_INPUT_MANIFEST" not in env:
        return []
    return [
        'set -- "${HPCBRIDGE_PYTHON:-python3}" -m hpcbridge.checkpoint.verify_inputs '
        '"$HPCBRIDGE_INPUT_MANIFEST" "${HPCBRIDGE_STATUS_DIR:-}" -- "$@"'
    ]


def render_array_script(
    requests: Sequence[LaunchRequest],
    positions: Sequence[int] | None = None,
    *,
    probe: bool = True,
) -> str:
    """One batch script for many attempts: array task ``positions[i]`` (default ``i``)
    runs ``requests[i]``."""
    if not requests:
        raise ValueError("an array needs at least one task")
    indices = list(range(len(requests))) if positions is None else list(positions)
    if len(indices) != len(requests):
        raise ValueError("an array needs one position per task")
    envs = [{**r.spec.env, **r.env} for r in requests]
    common = {
        name: value
        for name, value in envs[0].items()
        if all(env.get(name) == value for env in envs[1:])
    }
    first = requests[0]
    lines = [
        "#!/bin/bash",
        f"# hpcbridge array of {len(requests)} tasks of job {first.job_id.rsplit('.', 1)[0]}"
        f" ({_comment_safe(first.spec.name)}). Generated; do not edit.",
        *_exports(common),
        'case "${SLURM_ARRAY_TASK_ID:-}" in',
    ]
    for index, request, env in zip(indices, requests, envs, strict=True):
        own = {name: value for name, value in env.items() if common.get(name) != value}
        program = [*_program(request.spec), *shell_wrap(request.spec)]
        body = [*_exports(own), *program, *_verify_inputs(env), *node_cache_step(env)]
        lines.append(f"{index})")
        lines.extend(f"    {line}" for line in body)
        lines.append("    ;;")
    lines += [
        '*) echo "hpcbridge: no task ${SLURM_ARRAY_TASK_ID:-?} in this array" >&2; exit 2 ;;',
        "esac",
        *(monitor_lines(first.spec) if probe else []),  # after the task's own variables
        _RUNNER,
    ]
    return "\n".join(lines)


def _comment_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", text)


def render_batch(
    request: LaunchRequest,
    *,
    log_dir: PurePosixPath,
    workdir: str,
    default_partition: str | None,
    environment: Mapping[str, str] | None = None,
    script: str | None = None,
    array: str | None = None,
    log_stem: str | None = None,
    probe: bool = True,
) -> BatchJob:
    """Every sbatch option of one attempt (or of one array, with ``script`` and ``array``)."""
    spec = request.spec
    resources = spec.resources
    stem = log_stem or f"{request.job_id}.{request.attempt}"
    checkpoint = spec.checkpoint
    signal = None
    if checkpoint is not None:
        grace = max(1, min(65535, math.ceil(checkpoint.grace_s)))
        signal = f"B:{checkpoint.signal.removeprefix('SIG')}@{grace}"
    return BatchJob(
        name=job_name(request.token),
        comment=f"hpcbridge {request.job_id} attempt {request.attempt}: {spec.name}",
        script=script if script is not None else render_script(request, probe=probe),
        nodes=resources.nodes,
        tasks_per_node=resources.tasks_per_node,
        cpus_per_task=resources.cpus_per_task,
        stdout=str(log_dir / f"{stem}.out"),
        stderr=str(log_dir / f"{stem}.err"),
        workdir=workdir,
        mem_mb=resources.mem_mb,
        gres=gres_of(resources.gpus, resources.gpu_type),
        time_min=walltime_minutes(resources.walltime_s),
        # The burst policy's choice at submission (spec.burst.decided) wins.
        partition=(spec.burst.partition if spec.burst.decided == "burst" else None)
        or spec.placement.partition
        or default_partition,
        constraint="&".join(spec.placement.features) or None,
        licences=",".join(f"{name}:{count}" for name, count in spec.licences.items()) or None,
        switches=spec.placement.max_switches,
        deadline=spec.deadline.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        if spec.deadline
        else None,
        requeue=checkpoint is not None,
        signal=signal,
        array=array,
        account=spec.account,
        qos=spec.qos,
        reservation=spec.reservation,
        nice=-spec.priority if spec.priority else None,
        extra_args=spec.sbatch_args,
        environment=dict(environment or {}),
    )


def sbatch_argv(job: BatchJob) -> list[str]:
    """``sbatch --parsable ...`` reading the script from stdin (no file, no shell)."""
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={job.name}",
        f"--comment={job.comment}",
        f"--nodes={job.nodes}",
        f"--ntasks-per-node={job.tasks_per_node}",
        f"--cpus-per-task={job.cpus_per_task}",
        f"--output={job.stdout}",
        f"--error={job.stderr}",
        "--open-mode=append",
        f"--chdir={job.workdir}",
        "--export=ALL",
        "--requeue" if job.requeue else "--no-requeue",
    ]
    optional: list[tuple[str, Any]] = [
        ("--mem", f"{job.mem_mb}M" if job.mem_mb else None),
        ("--gres", job.gres),
        ("--time", job.time_min),
        ("--partition", job.partition),
        ("--constraint", job.constraint),
        ("--licenses", job.licences),
        ("--switches", job.switches),
        ("--deadline", job.deadline),
        ("--signal", job.signal),
        ("--array", job.array),
        ("--account", job.account),
        ("--qos", job.qos),
        ("--reservation", job.reservation),
        ("--nice", job.nice),
        ("--nodelist", job.nodelist),
    ]
    argv += [f"{flag}={value}" for flag, value in optional if value is not None]
    return [*argv, *job.extra_args]


def rest_job(job: BatchJob) -> dict[str, Any]:
    """The ``job`` object of ``POST /slurm/v0.0.38/job/submit``."""
    body: dict[str, Any] = {
        "name": job.name,
        "comment": job.comment,
        "nodes": [job.nodes, job.nodes],
        "tasks": job.nodes * job.tasks_per_node,
        "tasks_per_node": job.tasks_per_node,
        "cpus_per_task": job.cpus_per_task,
        "standard_output": job.stdout,
        "standard_error": job.stderr,
        "open_mode": "append",
        "current_working_directory": job.workdir,
        "environment": dict(job.environment),
        "requeue": job.requeue,
    }
    optional: dict[str, Any] = {
        "memory_per_node": job.mem_mb,
        "gres": job.gres,
        "time_limit": job.time_min,
        "partition": job.partition,
        "constraints": job.constraint,
        "licenses": job.licences,
        "signal": job.signal,
        "array": job.array,
        "account": job.account,
        "qos": job.qos,
        "reservation": job.reservation,
        "nice": job.nice,
        # sbatch -w; v0.0.38 refuses "required_nodes" ("Disabled key") but takes "nodelist"
        "nodelist": job.nodelist,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body
