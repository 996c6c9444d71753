"""Parsers and classification against the golden outputs of Slurm 22.05.8 (golden/README.md).

Pure: these need no cluster, but belong to the Slurm suite.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from hpcbridge.backends import Phase
from hpcbridge.backends.slurm._classify import observe, reason_sentence
from hpcbridge.backends.slurm._hostlist import compress_indices, expand_hostlist, expand_indices
from hpcbridge.backends.slurm._parse import (
    json_errors,
    parse_nodes_json,
    parse_rest_partitions,
    parse_sacct_json,
    parse_sacct_parsable,
    parse_scontrol_partitions,
    parse_squeue_json,
    parse_submit_output,
)
from hpcbridge.backends.slurm._records import (
    JobRecord,
    parse_elapsed_s,
    parse_licences,
    parse_mem_mb,
    wait_status,
)
from hpcbridge.backends.slurm._rest import offered_versions, parse_token
from hpcbridge.states import FailureClass

pytestmark = pytest.mark.slurm

GOLDEN = Path(__file__).parent / "golden"
LATER = 10**10  # a "now" long after every golden job ended: no more waiting for sacct


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def by_key(records: list[JobRecord]) -> dict[str, JobRecord]:
    return {record.key: record for record in records}


@pytest.fixture(scope="module")
def squeue() -> dict[str, JobRecord]:
    return by_key(parse_squeue_json(golden("squeue.json")))


@pytest.fixture(scope="module")
def sacct_text() -> dict[str, JobRecord]:
    return by_key(parse_sacct_parsable(golden("sacct_parsable.txt")))


@pytest.fixture(scope="module")
def sacct_json() -> dict[str, JobRecord]:
    return by_key(parse_sacct_json(golden("sacct.json")))


def classify(
    queue: JobRecord | None,
    accounting: JobRecord | None = None,
    *,
    kill: FailureClass | None = None,
    now: float = LATER,
    oom_in_stderr: bool = False,
) -> tuple[Phase, FailureClass | None, str | None]:
    seen = observe(
        "x",
        queue,
        accounting,
        cluster="golden",
        kill=kill,
        now=now,
        accounting_wait_s=30,
        usage_wait_s=5,
        oom_in_stderr=oom_in_stderr,
    )
    return seen.phase, seen.failure_class, seen.reason


# -- squeue --json ------------------------------------------------------------------------


def test_squeue_states_exit_codes_and_nodes(squeue: dict[str, JobRecord]) -> None:
    assert squeue["13"].state == "RUNNING"
    assert squeue["13"].licences == {"fluent": 3}
    assert squeue["5"].state == "FAILED"
    assert (squeue["5"].exit_code, squeue["5"].signal) == (3, None)  # raw status 768
    assert (squeue["1"].state, squeue["1"].signal) == ("TIMEOUT", 15)
    assert (squeue["4"].signal, squeue["4"].reason) == (9, "JobLaunchFailure")
    assert squeue["11"].state == "NODE_FAIL"
    assert squeue["11"].nodes == ("n2",)
    assert squeue["15"].started_at is None  # a pending job's start_time is only an estimate


def test_squeue_array_tasks_and_pending_remainder(squeue: dict[str, JobRecord]) -> None:
    running = squeue["14_0"]
    assert (running.job_id, running.array_job_id, running.array_task_id) == (18, 14, 0)
    pending = [squeue[f"14_{i}"] for i in range(5, 100)]
    assert {(r.state, r.reason, r.job_id) for r in pending} == {("PENDING", "Resources", 14)}
    assert "14_1" not in squeue  # tasks 1-4 were not in this answer
    assert len(squeue) == 1 + 1 + 95 + 3 + 4  # 13, 14_0, 14_[5-99], 15-17, 1/4/5/11


def test_rest_jobs_is_the_squeue_document() -> None:
    rest = by_key(parse_squeue_json(golden("rest_v0.0.38_jobs.json")))
    assert rest["15"].reason == "Licenses"
    assert rest["14_0"].job_id == 18
    assert (rest["5"].exit_code, rest["5"].state) == (3, "FAILED")


# -- sacct -P and sacct --json --------------------------------------------------------------


def test_sacct_text_folds_steps_into_jobs(sacct_text: dict[str, JobRecord]) -> None:
    memhog = sacct_text["4"]
    assert (memhog.state, memhog.signal, memhog.mem_per_node_mb) == ("FAILED", 9, 200.0)
    assert memhog.max_rss_mb == pytest.approx(1335912 / 1024)
    assert sacct_text["2"].nodes == ("n1", "n2", "n3")
    assert sacct_text["3"].alloc_tres["gres/gpu"] == "1"
    assert sacct_text["13"].licences == {"fluent": 3}
    assert sacct_text["15"].nodes == ()  # "None assigned"
    assert (sacct_text["14_0"].job_id, sacct_text["14_0"].array_job_id) == (18, 14)
    assert sacct_text["1"].elapsed_s == 70


def test_sacct_text_loses_bit_7_of_exit_codes(sacct_text: dict[str, JobRecord]) -> None:
    # exit 200 -> "72:0": documented; squeue's raw status is exact while the job is listed.
    assert sacct_text["30"].exit_code == 72
    assert sacct_text["5"].exit_code == 3


def test_sacct_text_keeps_the_latest_run_of_a_requeued_job(
    sacct_text: dict[str, JobRecord],
) -> None:
    assert sacct_text["9"].state == "CANCELLED"  # -D listed PREEMPTED first, then this


def test_sacct_text_with_the_backend_columns() -> None:
    records = by_key(parse_sacct_parsable(golden("sacct_hpcbridge_fields.txt")))
    assert records["78"].exit_code == 3
    assert records["78"].started_at == 1796084239
    assert records["77_0"].cancelled_by == "uid 0"
    assert records["77_0"].job_id == 79
    assert records["77_0"].max_rss_mb == pytest.approx(3284 / 1024)
    remainder = [records[f"77_{i}"] for i in range(6, 10)]
    assert {(r.state, r.started_at, r.nodes) for r in remainder} == {("CANCELLED", None, ())}


def test_sacct_json(sacct_json: dict[str, JobRecord]) -> None:
    assert sacct_json["4"].signal == 9
    assert sacct_json["4"].max_rss_mb == pytest.approx(1367973888 / 1024**2)
    assert sacct_json["5"].exit_code is None  # 22.05 writes return_code 0: unknown, not 0
    assert sacct_json["2"].exit_code == 0
    assert sacct_json["13"].cancelled_by == "root"
    assert sacct_json["13"].licences == {"fluent": 3}
    assert sacct_json["3"].alloc_tres["gres/gpu"] == "1"
    assert sacct_json["9"].state == "CANCELLED"  # the later of its two records
    assert sacct_json["14_0"].job_id == 18


# -- classification ---------------------------------------------------------------------------


def test_terminal_states_become_failure_classes(
    squeue: dict[str, JobRecord], sacct_text: dict[str, JobRecord]
) -> None:
    assert classify(squeue["1"], sacct_text["1"])[:2] == (Phase.FAILED, FailureClass.TIMEOUT)
    assert classify(squeue["11"], sacct_text["11"])[:2] == (
        Phase.FAILED,
        FailureClass.NODE_FAILURE,
    )
    phase, failure, reason = classify(squeue["5"], sacct_text["5"])
    assert (phase, failure) == (Phase.FAILED, FailureClass.APP_ERROR)
    assert reason == "the job exited with code 3"
    assert classify(None, sacct_text["2"])[:2] == (Phase.SUCCEEDED, None)
    preempted = replace(sacct_text["9"], state="PREEMPTED")
    assert classify(None, preempted)[1] is FailureClass.PREEMPTED
    for state, failure in [
        ("BOOT_FAIL", FailureClass.NODE_FAILURE),
        ("DEADLINE", FailureClass.TIMEOUT),
        ("OUT_OF_MEMORY", FailureClass.OOM),
    ]:
        assert classify(None, replace(sacct_text["1"], state=state))[1] is failure


def test_a_job_slurm_revoked_after_a_controller_restart_is_lost_not_an_app_error(
    sacct_text: dict[str, JobRecord], sacct_json: dict[str, JobRecord]
) -> None:
    """Job 30293 was allocated, then slurmctld was SIGKILLed before it saved that: it came back
    PENDING, started again and killed the running batch script ("job credential revoked")."""
    text = by_key(parse_sacct_parsable(golden("sacct_revoked.txt")))["30293"]
    json_ = by_key(parse_sacct_json(golden("sacct_revoked.json")))["30293"]
    for record in (text, json_):
        assert (record.state, record.batch_state) == ("FAILED", "CANCELLED")
        phase, failure, reason = classify(None, record)
        assert (phase, failure) == (Phase.FAILED, FailureClass.LOST)
        assert reason is not None and "did not fail" in reason
    # An ordinary failure's batch step failed with it: still the program's error.
    assert sacct_text["5"].batch_state == "FAILED"
    assert classify(None, sacct_text["5"])[1] is FailureClass.APP_ERROR
    assert sacct_json["5"].batch_state == "FAILED"


def test_a_job_over_its_memory_is_oom(
    squeue: dict[str, JobRecord], sacct_text: dict[str, JobRecord], sacct_json: dict[str, JobRecord]
) -> None:
    for accounting in (sacct_text["4"], sacct_json["4"]):
        phase, failure, reason = classify(squeue["4"], accounting)
        assert (phase, failure) == (Phase.FAILED, FailureClass.OOM)
        assert reason is not None
        assert "1305 MB" in reason
        assert "200 MB" in reason


def test_a_sigkilled_job_waits_for_sacct_then_is_lost_unless_memory_says_oom(
    squeue: dict[str, JobRecord],
) -> None:
    ended = squeue["4"].ended_at
    assert ended is not None
    phase, _, reason = classify(squeue["4"], None, now=ended + 1)
    assert phase is Phase.RUNNING
    assert reason is not None
    assert "accounting" in reason
    assert classify(squeue["4"], None)[1] is FailureClass.LOST
    assert classify(squeue["4"], None, oom_in_stderr=True)[1] is FailureClass.OOM


def test_cancelled_outside_says_by_whom(
    squeue: dict[str, JobRecord], sacct_json: dict[str, JobRecord]
) -> None:
    cancelled = replace(squeue["13"], state="CANCELLED")
    phase, failure, reason = classify(cancelled, sacct_json["13"])
    assert (phase, failure) == (Phase.FAILED, FailureClass.CANCELLED)
    assert reason == "cancelled outside hpcbridge by root"


def test_a_kill_by_hpcbridge_reports_its_class(squeue: dict[str, JobRecord]) -> None:
    cancelled = replace(squeue["13"], state="CANCELLED", ended_at=1.0)
    assert classify(cancelled, kill=FailureClass.TIMEOUT)[1] is FailureClass.TIMEOUT
    assert classify(cancelled, kill=FailureClass.OOM)[1] is FailureClass.OOM
    # a job that completed before the kill landed succeeded
    completed = replace(cancelled, state="COMPLETED", exit_code=0)
    assert classify(completed, kill=FailureClass.CANCELLED)[:2] == (Phase.SUCCEEDED, None)


def test_a_job_cancelled_while_pending_never_started(squeue: dict[str, JobRecord]) -> None:
    """Slurm gives it a start time equal to its end and ``CANCELLED 0:0``, but no node."""
    cancelled = replace(
        squeue["13"],
        state="CANCELLED",
        exit_code=0,
        signal=None,
        nodes=(),
        started_at=5.0,
        ended_at=5.0,
    )
    seen = observe(
        "13",
        cancelled,
        cancelled,
        cluster="c",
        kill=FailureClass.CANCELLED,
        now=6.0,
        accounting_wait_s=0.0,
    )
    assert (seen.phase, seen.failure_class, seen.started_at) == (
        Phase.FAILED,
        FailureClass.CANCELLED,
        None,
    )


def test_pending_reasons_in_words(squeue: dict[str, JobRecord]) -> None:
    assert classify(squeue["15"])[2] == "waiting for 3 licences of fluent"
    assert classify(squeue["16"])[2] == "waiting behind jobs of higher priority"
    assert classify(squeue["14_7"])[2] == (
        "waiting for resources (nodes, CPUs, memory or GPUs) to free up"
    )
    odd = {
        "Dependency": "waiting for the jobs it depends on",
        "PartitionDown": "partition batch is down",
        "ReqNodeNotAvail": "a node it needs is not available (down, drained or reserved)",
        "BeginTime": "waiting for its start time",
        "JobHeldUser": "held by its owner; release it with 'scontrol release 16'",
        "AssocGrpCpuLimit": "waiting: its account's limit AssocGrpCpuLimit is reached",
        "SomethingNew": "waiting; Slurm says SomethingNew",
    }
    for reason, sentence in odd.items():
        assert reason_sentence(replace(squeue["16"], reason=reason)) == sentence


def test_a_requeued_job_is_pending_again(squeue: dict[str, JobRecord]) -> None:
    requeued = replace(squeue["16"], restarts=1, reason="BeginTime")
    phase, failure, reason = classify(requeued)
    assert (phase, failure) == (Phase.PENDING, None)
    assert reason is not None
    assert reason.startswith("requeued after preemption or a node failure (restart 1)")
    preempting = replace(squeue["13"], state="PREEMPTED", requeue=True)
    assert classify(preempting)[0] is Phase.PENDING


def test_absent_everywhere_is_unknown_never_completed() -> None:
    phase, failure, reason = classify(None, None)
    assert (phase, failure) == (Phase.UNKNOWN, None)
    assert reason is not None
    assert "neither squeue nor sacct" in reason


def test_running_in_sacct_but_unknown_to_slurmctld_is_unknown(
    squeue: dict[str, JobRecord],
) -> None:
    ghost = replace(squeue["13"], source="accounting")
    assert classify(None, ghost)[0] is Phase.UNKNOWN


def test_an_unknown_state_is_not_guessed(squeue: dict[str, JobRecord]) -> None:
    assert classify(replace(squeue["13"], state="WEIRD"))[0] is Phase.UNKNOWN


def test_accounting_details(squeue: dict[str, JobRecord], sacct_text: dict[str, JobRecord]) -> None:
    seen = observe(
        "3",
        None,
        sacct_text["3"],
        cluster="golden",
        kill=None,
        now=LATER,
        accounting_wait_s=30,
    )
    slurm = seen.details["slurm"]
    assert slurm["gpus"] == 1
    assert slurm["cpus"] == 1
    assert slurm["mem_mb"] == 500
    assert slurm["nodes"] == ["n2"]
    assert slurm["cluster"] == "golden"


# -- nodes, partitions, odds and ends -------------------------------------------------------


def test_sinfo_drain_and_down() -> None:
    drain = {n.name: n for n in parse_nodes_json(golden("sinfo_drain.json"))}
    assert drain["n2"].drained
    assert drain["n2"].reason == "hpcbridge test"
    assert drain["n2"].summary == "idle+DRAIN"
    assert (drain["n1"].state, drain["n1"].cpus_alloc, drain["n1"].mem_alloc_mb) == (
        "mixed",
        1,
        500,
    )
    assert drain["n3"].features == ("static", "bigmem")
    assert drain["c1"].state_flags == ("CLOUD", "POWERED_DOWN")
    down = {n.name: n for n in parse_nodes_json(golden("sinfo_down.json"))}
    assert (down["n2"].state, down["n2"].state_flags, down["n2"].reason) == (
        "down",
        ("NOT_RESPONDING",),
        "Not responding",
    )


def test_partitions_from_scontrol_and_rest() -> None:
    text = {p.name: p for p in parse_scontrol_partitions(golden("scontrol_show_partition.txt"))}
    rest = {p.name: p for p in parse_rest_partitions(golden("rest_v0.0.38_partitions.json"))}
    for partitions in (text, rest):
        assert set(partitions) == {"batch", "spot", "prio", "cloud"}
        assert partitions["batch"].default
        assert not partitions["spot"].default
        assert partitions["batch"].nodes == ("n1", "n2", "n3")
        assert partitions["cloud"].nodes == ("c1", "c2")
        assert partitions["batch"].total_cpus == 6
        assert partitions["batch"].state == "UP"


def test_api_versions_offered() -> None:
    paths = {"paths": dict.fromkeys(golden("openapi_v3_paths.txt").split())}
    assert offered_versions(paths) == ["v0.0.36", "v0.0.37", "v0.0.38"]


def test_submit_output() -> None:
    assert parse_submit_output(golden("sbatch_parsable_array.txt")) == "14"
    assert parse_submit_output("123;cluster\n") == "123"
    with pytest.raises(ValueError, match="not a job id"):
        parse_submit_output("sbatch: error: nope")


def test_json_errors_are_sentences() -> None:
    document = {
        "errors": [
            {
                "description": "Failed while looking for jobs",
                "error_number": -1,
                "source": "slurm_load_jobs",
            }
        ]
    }
    assert json_errors(document) == ["Failed while looking for jobs (slurm_load_jobs) [error -1]"]


def test_token_output() -> None:
    assert parse_token("SLURM_JWT=abc.def\n") == "abc.def"
    assert parse_token("\nabc\n") == "abc"


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("n[1-3]", ("n1", "n2", "n3")),
        ("n[1-2,5],c1", ("n1", "n2", "n5", "c1")),
        ("gpu[08-10]", ("gpu08", "gpu09", "gpu10")),
        ("r[1-2]n[1-2]", ("r1n1", "r1n2", "r2n1", "r2n2")),
        ("None assigned", ()),
        ("", ()),
    ],
)
def test_hostlists(text: str, hosts: tuple[str, ...]) -> None:
    assert expand_hostlist(text) == hosts


def test_indices() -> None:
    assert expand_indices("5-9%2") == [5, 6, 7, 8, 9]
    assert expand_indices("[1-7:3,20]") == [1, 4, 7, 20]
    assert compress_indices([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"


def test_values() -> None:
    assert parse_mem_mb("1335912K") == pytest.approx(1304.6, abs=0.1)
    assert parse_mem_mb("2G") == 2048
    assert parse_mem_mb("500Mn") == 500
    assert parse_mem_mb("") is None
    assert parse_licences("fluent:3,abaqus*2,matlab@server:1,ansys") == {
        "fluent": 3,
        "abaqus": 2,
        "matlab": 1,
        "ansys": 1,
    }
    assert parse_elapsed_s("1-02:03:04") == 93784
    assert parse_elapsed_s("00:01:10") == 70
    assert parse_elapsed_s("5") == 300
    assert parse_elapsed_s("UNLIMITED") is None
    assert wait_status(768) == (3, None)
    assert wait_status(9) == (None, 9)
    assert wait_status(51200) == (200, None)
    assert wait_status(0) == (0, None)


def test_a_launch_failure_is_the_nodes_fault_but_a_memory_kill_is_not(
    squeue: dict[str, JobRecord],
) -> None:
    never_ran = dataclasses.replace(
        squeue["5"], reason="JobLaunchFailure", exit_code=1, signal=None, ended_at=LATER - 100
    )
    phase, failure, reason = classify(never_ran, never_ran)
    assert (phase, failure) == (Phase.FAILED, FailureClass.NODE_FAILURE)
    assert reason is not None and "could not launch" in reason
    memory = squeue["4"]  # JobLaunchFailure too, but killed by SIGKILL over its memory
    assert classify(memory, memory, oom_in_stderr=True)[1] is FailureClass.OOM
