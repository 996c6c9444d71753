"""``parse_squeue_text`` against the real ``squeue --me -O ...`` of golden/squeue_me.txt.

Pure: no cluster needed.
"""

from __future__ import annotations

from pathlib import Path

from hpcbridge.backends.slurm._parse import SQUEUE_FIELDS, parse_squeue_text, squeue_format

GOLDEN = Path(__file__).parent / "golden"


def test_squeue_format_is_unpadded_with_the_name_last() -> None:
    columns = squeue_format().split(",")
    assert len(columns) == len(SQUEUE_FIELDS)
    assert all(c.endswith(":0|") for c in columns[:-1])
    assert columns[-1] == "Name:0"


def test_parse_squeue_me_golden() -> None:
    records = {r.key: r for r in parse_squeue_text((GOLDEN / "squeue_me.txt").read_text())}
    assert sorted(records) == sorted(["1011", "1012", "1014", *(f"1013_{i}" for i in range(10))])

    running = records["1011"]
    assert running.name == "golden|run"  # a '|' in the name survives: it is the last column
    assert (running.state, running.nodes, running.partition) == ("RUNNING", ("n1",), "batch")
    assert running.started_at == 1796521728 and running.ended_at is None
    assert running.time_limit_s is None  # UNLIMITED
    assert running.requeue is True and running.restarts == 0
    assert running.reason == "" and running.exit_code == 0 and running.signal is None

    failed = records["1012"]
    assert (failed.state, failed.reason, failed.exit_code) == ("FAILED", "NonZeroExitCode", 3)
    assert failed.ended_at == 1796521728 and failed.elapsed_s == 0

    gpu = records["1014"]
    assert gpu.time_limit_s == 120
    assert gpu.alloc_tres["gres/gpu"] == "1"

    task = records["1013_2"]  # a running task has its own job id
    assert (task.job_id, task.array_job_id, task.array_task_id) == (1017, 1013, 2)
    assert task.state == "RUNNING" and task.nodes == ("n3",)
    assert task.licences == {"fluent": 1}

    for index in range(4, 10):  # the pending remainder '4-9', one record per task
        pending = records[f"1013_{index}"]
        assert (pending.job_id, pending.array_task_id) == (1013, index)
        assert (pending.state, pending.reason) == ("PENDING", "Licenses")
        assert pending.started_at is None and pending.nodes == ()


def test_parse_squeue_text_skips_what_is_not_a_job_line() -> None:
    text = "\nslurm_load_jobs error: Socket timed out\n1|2|3\n"
    assert parse_squeue_text(text) == []
