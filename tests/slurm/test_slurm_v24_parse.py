"""The CLI transport's parsers against real Slurm 24.11 output (golden/slurm24/, see its
README): ``squeue --me -O ...`` and ``sacct -P -o ...`` with the backend's own columns, and the
node list, which 24.11's ``sinfo --json`` no longer gives.

Pure: no cluster needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpcbridge.backends.slurm import ClusterConfig
from hpcbridge.backends.slurm._parse import (
    parse_nodes_json,
    parse_sacct_parsable,
    parse_squeue_exit,
    parse_squeue_text,
)
from hpcbridge.backends.slurm._records import JobRecord
from hpcbridge.backends.slurm._transport import CliTransport

GOLDEN = Path(__file__).parent / "golden" / "slurm24"


def by_key(records: list[JobRecord]) -> dict[str, JobRecord]:
    return {record.key: record for record in records}


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("768", (3, None)),  # 22.05: the raw wait status
        ("9", (None, 9)),
        ("0", (0, None)),
        ("3:0", (3, None)),  # 24.11: code:signal
        ("200:0", (200, None)),
        ("0:9", (None, 9)),
        ("0:0", (0, None)),
    ],
)
def test_squeue_exit_codes_of_both_versions(
    printed: str, expected: tuple[int | None, int | None]
) -> None:
    assert parse_squeue_exit(printed) == expected


def test_squeue_me_of_24_11() -> None:
    records = by_key(parse_squeue_text((GOLDEN / "squeue_me.txt").read_text()))
    assert sorted(records) == sorted(["17", "18", "19", "21", *(f"20_{i}" for i in range(6))])
    assert (records["17"].state, records["17"].exit_code, records["17"].nodes) == (
        "RUNNING",
        0,
        ("m1",),
    )
    failed = records["18"]
    assert (failed.state, failed.reason, failed.exit_code, failed.signal) == (
        "FAILED",
        "NonZeroExitCode",
        3,
        None,
    )
    killed = records["19"]
    assert (killed.state, killed.exit_code, killed.signal) == ("FAILED", None, 9)
    assert records["21"].exit_code == 200  # squeue keeps bit 7 (sacct does not: 72)
    task = records["20_1"]
    assert (task.job_id, task.array_job_id, task.array_task_id) == (23, 20, 1)
    assert task.licences == {"fluent": 2}
    for index in range(2, 6):
        pending = records[f"20_{index}"]
        assert (pending.state, pending.reason, pending.job_id) == ("PENDING", "Licenses", 20)


def test_sacct_text_of_24_11() -> None:
    records = by_key(parse_sacct_parsable((GOLDEN / "sacct_hpcbridge_fields.txt").read_text()))
    assert (records["18"].state, records["18"].exit_code) == ("FAILED", 3)
    assert (records["19"].state, records["19"].signal) == ("FAILED", 9)
    assert records["17"].cancelled_by == "uid 0"
    assert records["17"].max_rss_mb == pytest.approx(3544 / 1024)
    assert records["20_0"].job_id == 22
    remainder = [records[f"20_{i}"] for i in range(2, 6)]
    assert {(r.state, r.started_at, r.nodes) for r in remainder} == {("CANCELLED", None, ())}


def test_scontrol_show_nodes_json_of_24_11() -> None:
    nodes = {
        n.name: n for n in parse_nodes_json((GOLDEN / "scontrol_show_nodes_drain.json").read_text())
    }
    assert sorted(nodes) == ["m1", "m2", "m3"]
    assert (nodes["m1"].state, nodes["m1"].cpus_alloc, nodes["m1"].mem_alloc_mb) == (
        "mixed",
        1,
        500,
    )
    assert (nodes["m2"].state, nodes["m2"].state_flags, nodes["m2"].reason) == (
        "idle",
        ("DRAIN",),
        "hpcbridge test",
    )
    assert nodes["m3"].features == ("static", "bigmem")
    assert nodes["m3"].partitions == ("batch", "spot", "prio")


def test_the_cli_lists_nodes_with_scontrol_where_sinfo_groups_them(tmp_path: Path) -> None:
    """24.11's ``sinfo --json`` has no node list: the transport asks ``scontrol show nodes
    --json`` instead, from then on (stand-in commands print the recorded answers)."""
    calls = tmp_path / "calls"
    for command, golden in (
        ("sinfo", "sinfo_drain.json"),
        ("scontrol", "scontrol_show_nodes_drain.json"),
    ):
        script = tmp_path / command
        script.write_text(f'#!/bin/sh\necho "$0 $*" >>{calls}\ncat {GOLDEN / golden}\n')
        script.chmod(0o755)
    env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    transport = CliTransport(ClusterConfig(), env)
    assert [n.name for n in transport.nodes()] == ["m1", "m2", "m3"]
    assert [n.state for n in transport.nodes()] == ["mixed", "idle", "idle"]
    asked = [line.split(" ", 1)[1] for line in calls.read_text().splitlines()]
    assert asked == ["--json", "show nodes --json", "show nodes --json"]
