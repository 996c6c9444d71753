"""JUnit XML reports of finished jobs, for CI systems (GitLab, Jenkins, GitHub) to render.

One ``<testsuite>`` per logical job and one ``<testcase>`` per job or array task: a
failed or lost one carries ``<failure message=REASON type=FAILURE_CLASS>``, a cancelled one
``<skipped>``, one still unfinished (``--timeout`` ran out) ``<error type="unfinished">``;
each case has the tail of its output as ``<system-out>``/``<system-err>``.
"""

from __future__ import annotations

import datetime as dt
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hpcbridge.cli._reasons import job_reason
from hpcbridge.cli._render import listing_order
from hpcbridge.cli._setup import write_output
from hpcbridge.client import Client
from hpcbridge.errors import HpcbridgeError
from hpcbridge.states import JobState
from hpcbridge.store import Job

TAIL_LINES = 100
_TAIL_BYTES = 256 * 1024
_FAILED = frozenset({JobState.FAILED, JobState.LOST})


@dataclass(frozen=True, slots=True)
class Output:
    """The last lines a job or task wrote to stdout and stderr."""

    stdout: str = ""
    stderr: str = ""


OutputOf = Callable[[Job], Output]
"""How to read a finished job's output tail (files here, or the API in client mode)."""


def read_tail(path: Path | None, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` (its last 256 KiB); empty when unreadable."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - _TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def duration_s(job: Job) -> float:
    """How long the job ran: from its start (or acceptance) to its end (0 while unfinished)."""
    if job.finished_at is None:
        return 0.0
    return max(0.0, job.finished_at - (job.started_at or job.finished_at))


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry most control characters: a program's raw output may."""
    return "".join(c if c in "\t\n\r" or c >= " " else "\ufffd" for c in text)


def _case(parent: ET.Element, job: Job, classname: str, output: Output) -> str | None:
    """Add one test case; return its outcome (``failure``/``skipped``/``error``/None)."""
    name = job.name if job.task_index is None else f"{job.name}[{job.task_index}]"
    case = ET.SubElement(
        parent, "testcase", name=name, classname=classname, time=f"{duration_s(job):.3f}"
    )
    reason = _xml_text(job_reason(job) or job.state.value)
    outcome: str | None = None
    if job.state in _FAILED:
        kind = job.failure_class.value if job.failure_class else job.state.value
        element = ET.SubElement(case, "failure", message=reason, type=kind)
        element.text = f"{job.job_id}: {job.state.value}: {reason}"
        outcome = "failure"
    elif job.state is JobState.CANCELLED:
        ET.SubElement(case, "skipped", message=reason)
        outcome = "skipped"
    elif not job.state.terminal:
        message = f"{job.job_id} was still {job.state.value} when the report was written"
        ET.SubElement(case, "error", message=message, type="unfinished")
        outcome = "error"
    for tag, text in (("system-out", output.stdout), ("system-err", output.stderr)):
        if text:
            ET.SubElement(case, tag).text = _xml_text(text)
    return outcome


def _timestamp(job: Job) -> str:
    moment = dt.datetime.fromtimestamp(job.created_at, tz=dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def junit_report(
    jobs: Sequence[tuple[Job, Sequence[Job]]], output_of: OutputOf, *, hostname: str = ""
) -> str:
    """The report of ``jobs``, each with its array tasks (none for a plain job)."""
    root = ET.Element("testsuites", name="hpcbridge")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for number, (job, tasks) in enumerate(jobs):
        suite = ET.SubElement(root, "testsuite", name=job.name)
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="job_id", value=job.job_id)
        cases = list(tasks) if tasks else [job]
        outcomes = [
            _case(suite, case, f"{job.project}.{job.name}", output_of(case)) for case in cases
        ]
        counts = {
            "tests": len(cases),
            "failures": outcomes.count("failure"),
            "errors": outcomes.count("error"),
            "skipped": outcomes.count("skipped"),
        }
        elapsed = duration_s(job)
        suite.attrib.update({key: str(value) for key, value in counts.items()})
        suite.attrib.update(
            id=str(number),
            package=job.project,
            time=f"{elapsed:.3f}",
            timestamp=_timestamp(job),
            hostname=hostname or socket.gethostname() or "localhost",
        )
        for key, value in counts.items():
            totals[key] += value
        total_time += elapsed
    root.attrib.update({key: str(value) for key, value in totals.items()})
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _output_of(client: Client) -> OutputOf:
    def output(job: Job) -> Output:
        if not job.attempt_count:
            return Output()
        try:
            stdout, stderr = client.log_paths(job.job_id)
        except HpcbridgeError:  # a backend no longer configured: the report goes on
            return Output()
        return Output(read_tail(stdout), read_tail(stderr))

    return output


class JobReader(Protocol):
    """What the report reads: the embedded ``Client`` and ``RemoteClient`` both have it."""

    def get(self, job_id: str) -> Job: ...

    def tasks(self, job_id: str) -> list[Job]: ...


def write_junit(
    client: JobReader, job_ids: Sequence[str], path: Path, output_of: OutputOf | None = None
) -> None:
    """Write the JUnit report of ``job_ids`` (as they are now) to ``path``; output tails
    come from ``output_of`` (default: the embedded client's log files)."""
    if output_of is None:
        assert isinstance(client, Client)
        output_of = _output_of(client)
    jobs = [client.get(job_id) for job_id in job_ids]
    cases = [
        (job, listing_order(client.tasks(job.job_id)) if job.is_array_parent else [])
        for job in jobs
    ]
    write_output(path, junit_report(cases, output_of), "--junit")
