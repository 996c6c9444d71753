"""Parsers of Slurm 22.05 outputs into records; pure functions, tested against golden files.

``parse_squeue_json`` reads ``squeue --json`` and slurmrestd's ``/slurm/v0.0.38/jobs`` (the
same document); ``parse_squeue_text`` reads the filtered ``squeue --me -O ...`` hpcbridge
polls with (22.05's ``--json`` ignores every filter). ``parse_sacct_parsable`` reads
``sacct -P`` with a header line; ``parse_sacct_json`` reads ``sacct --json`` and
``/slurmdb/v0.0.38/jobs``. Numbers that later Slurm versions wrap as
``{"set": true, "number": N}`` are unwrapped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from hpcbridge.backends.slurm._hostlist import expand_hostlist, expand_indices
from hpcbridge.backends.slurm._records import (
    JobRecord,
    NodeRecord,
    PartitionRecord,
    parse_elapsed_s,
    parse_epoch,
    parse_licences,
    parse_mem_mb,
    parse_tres,
    tres_mem_per_node_mb,
    wait_status,
)

PENDING_STATES = frozenset(
    {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "RESV_DEL_HOLD"}
)
TERMINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "REVOKED",
    }
)

SACCT_FIELDS = (
    "JobID",
    "JobIDRaw",
    "JobName",
    "Partition",
    "State",
    "ExitCode",
    "Reason",
    "NodeList",
    "AllocTRES",
    "ReqMem",
    "MaxRSS",
    "Elapsed",
    "Submit",
    "Start",
    "End",
    "Timelimit",
    "User",
)
"""The columns hpcbridge asks sacct for (``-o``); the parser reads the header, not this."""


def load_json(text: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(text, Mapping):
        return dict(text)
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object")
    return document


def json_errors(document: Mapping[str, Any]) -> list[str]:
    """The ``errors`` Slurm put in a JSON answer, as sentences."""
    out = []
    for error in document.get("errors") or []:
        if isinstance(error, Mapping):
            text = error.get("description") or error.get("error") or ""
            source = error.get("source")
            number = error.get("error_number") or error.get("errno")
            out.append(
                " ".join(
                    str(part)
                    for part in (
                        text,
                        f"({source})" if source else "",
                        f"[error {number}]" if number else "",
                    )
                    if part
                )
            )
        else:
            out.append(str(error))
    return out


def _num(value: Any) -> float | None:
    """A number, or Slurm's ``{"set": bool, "infinite": bool, "number": N}``."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _int(value: Any, default: int = 0) -> int:
    number = _num(value)
    return default if number is None else int(number)


def _state(value: Any) -> str:
    """``job_state`` is a string in 22.05 and a list of flags later: the base state."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").split(" ", 1)[0].upper()


def _reason(value: Any) -> str:
    text = str(value or "")
    return "" if text in ("None", "(null)") else text


def _time(value: Any) -> float | None:
    number = _num(value)
    return number if number else None


# -- squeue --json and REST /jobs ----------------------------------------------------------


def parse_squeue_json(text: str | bytes | Mapping[str, Any]) -> list[JobRecord]:
    """Every job of ``squeue --json`` (it ignores filters; finished jobs stay ~300 s)."""
    document = load_json(text)
    records: list[JobRecord] = []
    for job in document.get("jobs") or []:
        records.extend(_queue_records(job))
    return records


def _queue_records(job: Mapping[str, Any]) -> list[JobRecord]:
    state = _state(job.get("job_state"))
    job_id = _int(job.get("job_id"))
    array_job_id = _int(job.get("array_job_id")) or None
    task_id = _num(job.get("array_task_id"))
    started = _time(job.get("start_time")) if state not in PENDING_STATES else None
    ended = _time(job.get("end_time")) if state in TERMINAL_STATES else None
    exit_code, signal = _queue_exit(job.get("exit_code"))
    alloc = parse_tres(job.get("tres_alloc_str"))
    requested = parse_tres(job.get("tres_req_str"))
    limit = _num(job.get("time_limit"))
    base = JobRecord(
        key=str(job_id),
        job_id=job_id,
        name=str(job.get("name") or ""),
        state=state,
        source="queue",
        reason=_reason(job.get("state_reason")),
        exit_code=exit_code,
        signal=signal,
        nodes=expand_hostlist(job.get("nodes")),
        partition=str(job.get("partition") or ""),
        user=str(job.get("user_name") or ""),
        submitted_at=_time(job.get("submit_time")),
        started_at=started,
        ended_at=ended,
        elapsed_s=(ended - started) if started and ended else None,
        time_limit_s=limit * 60 if limit else None,
        restarts=_int(job.get("restart_cnt")),
        requeue=bool(job["requeue"]) if "requeue" in job else None,
        licences=parse_licences(job.get("licenses")),
        alloc_tres=alloc,
        mem_per_node_mb=tres_mem_per_node_mb(alloc or requested),
        extra={"state_description": job.get("state_description") or ""},
    )
    if array_job_id is None:
        return [base]
    if task_id is not None:
        index = int(task_id)
        return [_task(base, array_job_id, index)]
    indices = expand_indices(str(job.get("array_task_string") or ""))
    return [_task(base, array_job_id, index) for index in indices]


def _queue_exit(value: Any) -> tuple[int | None, int | None]:
    """22.05's raw wait status, or v0.0.40+'s ``{status, return_code, signal: {id}}``."""
    if not isinstance(value, Mapping):
        return wait_status(_int(value, 0))
    signal = _num((value.get("signal") or {}).get("id"))
    if signal:
        return None, int(signal)
    code = _num(value.get("return_code"))
    return (int(code) if code is not None else None), None


def _task(base: JobRecord, array_job_id: int, index: int) -> JobRecord:
    return replace(
        base, key=f"{array_job_id}_{index}", array_job_id=array_job_id, array_task_id=index
    )


# -- squeue --me -h -O ... (filtered, text) ----------------------------------------------

SQUEUE_FIELDS = (
    "JobID",
    "ArrayJobID",
    "ArrayTaskID",
    "State",
    "Reason",
    "exit_code",
    "RestartCnt",
    "NodeList",
    "Partition",
    "UserName",
    "SubmitTime",
    "StartTime",
    "EndTime",
    "TimeLimit",
    "Requeue",
    "Licenses",
    "tres-alloc",
    "Name",
)
"""The columns of hpcbridge's ``squeue -O``: every one unpadded (``:0``), ``|`` between them,
the job name last (it may itself contain ``|``)."""


def squeue_format() -> str:
    """The ``-O`` argument for ``SQUEUE_FIELDS``."""
    return ",".join(f"{name}:0|" for name in SQUEUE_FIELDS[:-1]) + f",{SQUEUE_FIELDS[-1]}:0"


def _text(value: str) -> str:
    return "" if value in ("(null)", "N/A", "None") else value


def parse_squeue_exit(value: str) -> tuple[int | None, int | None]:
    """squeue's ``exit_code`` -> (exit code, signal): Slurm 22.05 prints the raw wait status
    (``768``), 24.11 ``code:signal`` (``3:0``, ``0:9``) as sacct does."""
    code, colon, signal = value.strip().partition(":")
    if not colon:
        return wait_status(int(code or 0))
    if int(signal or 0):
        return None, int(signal)
    return int(code or 0), None


def parse_squeue_text(text: str) -> list[JobRecord]:
    """``squeue -h -O <squeue_format()>`` with ``SLURM_TIME_FORMAT=%s``: one record per job,
    a pending array remainder (``14_[5-999]``) expanded into one record per task."""
    records: list[JobRecord] = []
    width = len(SQUEUE_FIELDS)
    for line in text.splitlines():
        values = line.split("|", width - 1)
        if len(values) != width or not values[0].strip().isdigit():
            continue
        row = dict(zip(SQUEUE_FIELDS, values, strict=True))
        state = row["State"].strip().split(" ", 1)[0].upper()
        job_id = int(row["JobID"])
        started = parse_epoch(row["StartTime"]) if state not in PENDING_STATES else None
        ended = parse_epoch(row["EndTime"]) if state in TERMINAL_STATES else None
        exit_code, signal = parse_squeue_exit(row["exit_code"])
        alloc = parse_tres(_text(row["tres-alloc"]))
        base = JobRecord(
            key=str(job_id),
            job_id=job_id,
            name=row["Name"],
            state=state,
            source="queue",
            reason=_reason(row["Reason"]),
            exit_code=exit_code,
            signal=signal,
            nodes=expand_hostlist(_text(row["NodeList"])),
            partition=row["Partition"],
            user=row["UserName"],
            submitted_at=parse_epoch(row["SubmitTime"]),
            started_at=started,
            ended_at=ended,
            elapsed_s=(ended - started) if started and ended else None,
            time_limit_s=parse_elapsed_s(row["TimeLimit"]),
            restarts=int(row["RestartCnt"] or 0),
            requeue=row["Requeue"] == "1" if row["Requeue"] in ("0", "1") else None,
            licences=parse_licences(_text(row["Licenses"])),
            alloc_tres=alloc,
            mem_per_node_mb=tres_mem_per_node_mb(alloc),
        )
        tasks = _text(row["ArrayTaskID"])
        if not tasks:
            records.append(base)
            continue
        array_job_id = int(row["ArrayJobID"])
        if tasks.isdigit():
            records.append(_task(base, array_job_id, int(tasks)))
        else:
            records.extend(_task(base, array_job_id, i) for i in expand_indices(tasks))
    return records


# -- sacct -P -----------------------------------------------------------------------------


def parse_sacct_parsable(text: str) -> list[JobRecord]:
    """``sacct -P -o ...`` with its header line: one record per job, steps folded in.

    Times must have been printed with ``SLURM_TIME_FORMAT=%s``. Text exit codes lose bit 7
    in 22.05 (``exit 200`` shows ``72:0``); see the golden README.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split("|")
    allocations: dict[str, dict[str, str]] = {}
    order: list[str] = []
    steps: dict[str, list[dict[str, str]]] = {}
    for line in lines[1:]:
        values = line.split("|")
        if len(values) != len(header):
            continue  # a job name with '|' in it: not one of ours
        row = dict(zip(header, values, strict=True))
        raw = row.get("JobIDRaw") or row.get("JobID", "")
        base_raw, dot, _ = raw.partition(".")
        if dot:
            steps.setdefault(base_raw, []).append(row)
            continue
        allocations[base_raw] = row
        steps[base_raw] = []  # a requeued job's earlier run (-D) is replaced by the latest
        if base_raw not in order:
            order.append(base_raw)
    records: list[JobRecord] = []
    for raw in order:
        records.extend(_accounting_records(allocations[raw], steps.get(raw, [])))
    return records


def _split_state(text: str) -> tuple[str, str | None]:
    """``CANCELLED by 0`` -> (``CANCELLED``, ``uid 0``)."""
    state, _, rest = text.partition(" by ")
    who = rest.strip()
    return state.strip().upper(), (f"uid {who}" if who.isdigit() else who or None)


def _exit_pair(text: str | None) -> tuple[int | None, int | None]:
    """``3:0`` -> (3, None); ``0:9`` -> (None, 9)."""
    if not text or ":" not in text:
        return None, None
    code_text, _, signal_text = text.partition(":")
    try:
        code, signal = int(code_text), int(signal_text)
    except ValueError:
        return None, None
    return (None, signal) if signal else (code, None)


def _accounting_records(
    row: Mapping[str, str], steps: Iterable[Mapping[str, str]]
) -> list[JobRecord]:
    state, by = _split_state(row.get("State", ""))
    exit_code, signal = _exit_pair(row.get("ExitCode"))
    alloc = parse_tres(row.get("AllocTRES"))
    rss = [parse_mem_mb(step.get("MaxRSS"), default_unit="K") for step in steps]
    rss_known = [value for value in rss if value is not None]
    raw = row.get("JobIDRaw") or row.get("JobID", "")
    job_id = int(raw) if raw.isdigit() else 0
    started = parse_epoch(row.get("Start"))
    base = JobRecord(
        key=row.get("JobID", raw),
        job_id=job_id,
        name=row.get("JobName", ""),
        state=state,
        source="accounting",
        reason=_reason(row.get("Reason")),
        exit_code=exit_code,
        signal=signal,
        nodes=expand_hostlist(row.get("NodeList")),
        partition=row.get("Partition", ""),
        user=row.get("User", ""),
        submitted_at=parse_epoch(row.get("Submit")),
        started_at=started,
        ended_at=parse_epoch(row.get("End")) if state in TERMINAL_STATES else None,
        elapsed_s=parse_elapsed_s(row.get("Elapsed")),
        time_limit_s=parse_elapsed_s(row.get("Timelimit")),
        licences={
            name.removeprefix("license/"): int(float(count))
            for name, count in alloc.items()
            if name.startswith("license/")
        },
        alloc_tres=alloc,
        mem_per_node_mb=tres_mem_per_node_mb(alloc) or parse_mem_mb(row.get("ReqMem")),
        max_rss_mb=max(rss_known) if rss_known else None,
        cancelled_by=by if state == "CANCELLED" else None,
        batch_state=next(
            (
                _split_state(step.get("State", ""))[0]
                for step in steps
                if (step.get("JobIDRaw") or step.get("JobID", "")).endswith(".batch")
            ),
            "",
        ),
    )
    job_text = row.get("JobID", raw)
    array_part, underscore, task_text = job_text.partition("_")
    if not underscore or not array_part.isdigit():
        return [base]
    array_job_id = int(array_part)
    if task_text.isdigit():
        return [_task(base, array_job_id, int(task_text))]
    return [_task(base, array_job_id, index) for index in expand_indices(task_text)]


# -- sacct --json and REST /slurmdb/jobs ---------------------------------------------------


def parse_sacct_json(text: str | bytes | Mapping[str, Any]) -> list[JobRecord]:
    """``sacct --json`` / ``/slurmdb/v0.0.38/jobs``. In 22.05 a non-zero exit is reported as
    ``return_code`` 0: the exit code of a FAILED job is then unknown (None)."""
    document = load_json(text)
    latest: dict[tuple[int, str], Mapping[str, Any]] = {}
    for job in document.get("jobs") or []:
        array = job.get("array") or {}
        key = (_int(job.get("job_id")), str(array.get("task") or ""))
        previous = latest.get(key)
        started = _num((job.get("time") or {}).get("submission")) or 0
        if previous is None or started >= (
            _num((previous.get("time") or {}).get("submission")) or 0
        ):
            latest[key] = job  # a requeued job appears once per run: keep the latest
    records: list[JobRecord] = []
    for job in latest.values():
        records.extend(_slurmdb_records(job))
    return records


def _slurmdb_exit(job: Mapping[str, Any], state: str) -> tuple[int | None, int | None]:
    exit_code = job.get("exit_code") or {}
    status = exit_code.get("status") or ""
    if isinstance(status, list):  # v0.0.40+: ["SIGNALED"]
        status = status[0] if status else ""
    signal_block = exit_code.get("signal") or {}
    signal = _num(signal_block.get("signal_id", signal_block.get("id")))
    if status == "SIGNALED" and signal:
        return None, int(signal)
    code = _num(exit_code.get("return_code"))
    if code is None:
        return None, None
    if code == 0 and state not in ("COMPLETED",):
        return None, None  # 22.05 writes 0 for every exit status it did not keep
    return int(code), None


def _slurmdb_records(job: Mapping[str, Any]) -> list[JobRecord]:
    state_block = job.get("state") or {}
    state = _state(state_block.get("current") if isinstance(state_block, Mapping) else state_block)
    times = job.get("time") or {}
    exit_code, signal = _slurmdb_exit(job, state)
    alloc = {
        (f"{t['type']}/{t['name']}" if t.get("name") else str(t.get("type"))): str(
            _int(t.get("count"))
        )
        for t in ((job.get("tres") or {}).get("allocated") or [])
        if t.get("count") is not None
    }
    if "mem" in alloc:
        alloc["mem"] = f"{alloc['mem']}M"
    rss: list[float] = []
    batch_state = ""
    for step in job.get("steps") or []:
        if (step.get("step") or {}).get("name") == "batch":
            batch_state = _state(step.get("state"))
        for item in (((step.get("tres") or {}).get("requested") or {}).get("max")) or []:
            if item.get("type") == "mem" and item.get("count") is not None:
                rss.append(_int(item["count"]) / (1024 * 1024))
    started = _time(times.get("start"))
    limit = _num(times.get("limit"))
    job_id = _int(job.get("job_id"))
    killer = job.get("kill_request_user")
    base = JobRecord(
        key=str(job_id),
        job_id=job_id,
        name=str(job.get("name") or ""),
        state=state,
        source="accounting",
        reason=_reason(state_block.get("reason") if isinstance(state_block, Mapping) else ""),
        exit_code=exit_code,
        signal=signal,
        nodes=expand_hostlist(job.get("nodes")),
        partition=str(job.get("partition") or ""),
        user=str(job.get("user") or ""),
        submitted_at=_time(times.get("submission")),
        started_at=started,
        ended_at=_time(times.get("end")) if state in TERMINAL_STATES else None,
        elapsed_s=_num(times.get("elapsed")),
        time_limit_s=limit * 60 if limit else None,
        licences={
            name.removeprefix("license/"): int(count)
            for name, count in alloc.items()
            if name.startswith("license/")
        },
        alloc_tres=alloc,
        mem_per_node_mb=tres_mem_per_node_mb(alloc)
        or _num((job.get("required") or {}).get("memory")),
        max_rss_mb=max(rss) if rss else None,
        cancelled_by=str(killer) if killer and state == "CANCELLED" else None,
        batch_state=batch_state,
    )
    array = job.get("array") or {}
    array_job_id = _int(array.get("job_id")) or None
    if array_job_id is None:
        return [base]
    task_id = _num(array.get("task_id"))
    if task_id is not None:
        return [_task(base, array_job_id, int(task_id))]
    task_text = str(array.get("task") or "")
    return [_task(base, array_job_id, index) for index in expand_indices(task_text)] or [
        _task(base, array_job_id, 0)
    ]


# -- nodes and partitions ------------------------------------------------------------------


def parse_nodes_json(text: str | bytes | Mapping[str, Any]) -> list[NodeRecord]:
    """``sinfo --json`` and REST ``/slurm/v0.0.38/nodes`` (the same document)."""
    document = load_json(text)
    nodes = []
    for node in document.get("nodes") or []:
        state = node.get("state")
        flags = list(node.get("state_flags") or [])
        if isinstance(state, list):  # later versions: ["IDLE", "DRAIN"]
            flags = [*state[1:], *flags]
            state = state[0] if state else ""
        nodes.append(
            NodeRecord(
                name=str(node.get("name")),
                state=str(state or "").lower(),
                state_flags=tuple(str(f).upper() for f in flags),
                features=_words(node.get("features")),
                gres=str(node.get("gres") or ""),
                gres_used=str(node.get("gres_used") or ""),
                cpus_alloc=_int(node.get("alloc_cpus")),
                cpus_total=_int(node.get("cpus")),
                mem_alloc_mb=_int(node.get("alloc_memory")),
                mem_total_mb=_int(node.get("real_memory")),
                reason=str(node.get("reason") or ""),
                partitions=tuple(node.get("partitions") or ()),
            )
        )
    return sorted(nodes, key=lambda n: n.name)


def _words(value: Any) -> tuple[str, ...]:
    """``"a,b"`` (22.05) or ``["a", "b"]`` (v0.0.40+)."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(str(item) for item in items if item)


def _key_values(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in line.split():
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def parse_scontrol_partitions(text: str) -> list[PartitionRecord]:
    """``scontrol show partition -o``: one ``Key=Value ...`` line per partition."""
    partitions = []
    for line in text.splitlines():
        values = _key_values(line)
        if "PartitionName" not in values:
            continue
        partitions.append(
            PartitionRecord(
                name=values["PartitionName"],
                state=values.get("State", "").upper(),
                nodes=expand_hostlist(values.get("Nodes")),
                total_cpus=int(values.get("TotalCPUs", "0") or 0),
                default=values.get("Default") == "YES",
                max_time_s=parse_elapsed_s(values.get("MaxTime")),
            )
        )
    return partitions


def parse_rest_partitions(text: str | bytes | Mapping[str, Any]) -> list[PartitionRecord]:
    document = load_json(text)
    partitions = []
    for part in document.get("partitions") or []:
        nodes, cpus = part.get("nodes"), part.get("cpus")
        maximums = part.get("maximums") or {}
        limit = _num(part.get("max_time_limit", maximums.get("time")))
        state = part.get("state") or (part.get("partition") or {}).get("state") or ""
        flags = [*(part.get("flags") or ()), *((part.get("partition") or {}).get("state") or ())]
        partitions.append(
            PartitionRecord(
                name=str(part.get("name")),
                state=_state(state),
                # v0.0.40+: nodes {configured: "n[1-3]", total}, cpus {total}
                nodes=expand_hostlist(
                    nodes.get("configured") if isinstance(nodes, Mapping) else nodes
                ),
                total_cpus=_int(
                    cpus.get("total") if isinstance(cpus, Mapping) else part.get("total_cpus")
                ),
                default="default" in [str(f).lower() for f in flags],
                max_time_s=limit * 60 if limit and limit > 0 else None,
            )
        )
    return partitions


def parse_submit_output(text: str) -> str:
    """``sbatch --parsable`` prints ``ID`` or ``ID;cluster``: the id."""
    line = text.strip().splitlines()[-1] if text.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch printed {text.strip()!r}, not a job id")
    return job_id
