"""Loading JobSpec v1 from YAML, JSON and documents: what is accepted, and what each error says.

Every bad spec must raise SpecError whose message names the field path and says how to fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.errors import SpecError
from hpcbridge.spec import JobSpec, load_spec_document, load_spec_file, load_spec_text
from hpcbridge.states import FailureClass

MINIMAL_YAML = """\
apiVersion: hpcbridge/v1
kind: Job
name: hello
command: [echo, hello]
"""


def doc(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "hello",
        "command": ["echo", "hello"],
    }
    document.update(fields)
    return {key: value for key, value in document.items() if value is not None}


# -- valid specs ---------------------------------------------------------------------------


def test_minimal_yaml_fills_in_defaults() -> None:
    spec = load_spec_text(MINIMAL_YAML)
    assert spec.name == "hello"
    assert spec.command == ("echo", "hello")
    assert spec.script is None
    assert spec.project == "default"
    assert spec.backend == "local"
    assert spec.resources.nodes == 1
    assert spec.resources.cpus_per_node == 1
    assert spec.resources.walltime_s is None
    assert spec.retry.max_attempts == 3
    assert FailureClass.APP_ERROR not in spec.retry.retry_on


def test_json_text_and_yaml_text_give_the_same_spec() -> None:
    as_json = json.dumps(doc(resources={"walltime": "2h", "mem": "4G"}, tags={"team": "ml"}))
    as_yaml = MINIMAL_YAML + "resources: {walltime: 2h, mem: 4G}\ntags: {team: ml}\n"
    assert load_spec_text(as_json) == load_spec_text(as_yaml)


def test_a_full_spec_loads() -> None:
    text = """\
apiVersion: hpcbridge/v1
kind: Job
name: train-resnet
project: vision
tags: {team: ml, cost_centre: cc-42}
workload_class: training
command: [python, train.py, --epochs, "10"]
env: {OMP_NUM_THREADS: "4"}
resources:
  nodes: 2
  tasks_per_node: 4
  cpus_per_task: 8
  mem: 64GiB
  gpus: 4
  gpu_type: a100
  walltime: 1-00:00:00
placement: {partition: gpu, features: [ib], spread: fault_domain}
licences: {matlab: 2}
stage_in: [{source: "s3://bucket/data", dest: data, checksum: "sha256:abc123"}]
stage_out: [{source: out, dest: "s3://bucket/out"}]
checkpoint: {interval: 30m, keep: 5, signal: SIGUSR2, grace: 2m}
retry:
  max_attempts: 5
  backoff: {initial: 30s, factor: 3, max: 2h, jitter: 0.2}
  retry_on: [node_failure, preempted, timeout]
  per_class_max: {node_failure: 4}
priority: 10
deadline: 2030-01-01T00:00:00Z
burst: {eligible: true, budget_cap: 100, residency: [eu]}
backend: slurm
cluster: hpc1
"""
    spec = load_spec_text(text)
    assert spec.resources.cpus_per_node == 32
    assert spec.resources.mem_mb == 64 * 1024
    assert spec.resources.walltime_s == 86400
    assert spec.checkpoint is not None
    assert spec.checkpoint.interval == 1800
    assert spec.checkpoint.grace_s == 120
    assert spec.retry.backoff.initial_s == 30
    assert spec.retry.backoff.max_s == 7200
    assert spec.retry.retry_on == {
        FailureClass.NODE_FAILURE,
        FailureClass.PREEMPTED,
        FailureClass.TIMEOUT,
    }
    assert spec.retry.per_class_max == {FailureClass.NODE_FAILURE: 4}
    assert spec.stage_in[0].checksum == "sha256:abc123"


def test_script_instead_of_command() -> None:
    spec = load_spec_document(doc(command=None, script="#!/bin/sh\necho hi\n"))
    assert spec.command is None
    assert spec.script == "#!/bin/sh\necho hi\n"


@pytest.mark.parametrize(
    ("walltime", "seconds"),
    [
        ("90m", 5400),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("45s", 45),
        ("1d", 86400),
        ("1.5h", 5400),
        ("1-00:00:00", 86400),
        ("2-12:30:00", 2 * 86400 + 12 * 3600 + 30 * 60),
        ("00:10:00", 600),
        ("10:00", 600),
        ("3600", 3600),
        (3600, 3600),
        (0.5, 0.5),
    ],
)
def test_walltime_forms(walltime: object, seconds: float) -> None:
    spec = load_spec_document(doc(resources={"walltime": walltime}))
    assert spec.resources.walltime_s == seconds


@pytest.mark.parametrize(
    ("mem", "megabytes"),
    [
        ("512M", 512),
        ("512MB", 512),
        ("4G", 4096),
        ("4g", 4096),
        ("2GiB", 2048),
        ("1T", 1024 * 1024),
        ("2048", 2048),
        (2048, 2048),
        ("1.5G", 1536),
    ],
)
def test_memory_forms(mem: object, megabytes: int) -> None:
    spec = load_spec_document(doc(resources={"mem": mem}))
    assert spec.resources.mem_mb == megabytes


def test_field_names_and_aliases_are_both_accepted() -> None:
    by_alias = load_spec_document(doc(resources={"walltime": "1h", "mem": "1G"}))
    by_name = load_spec_document(doc(resources={"walltime_s": 3600, "mem_mb": 1024}))
    assert by_alias == by_name


def test_required_tags_present() -> None:
    spec = load_spec_document(
        doc(tags={"team": "a", "cost_centre": "b"}), required_tags=("team", "cost_centre")
    )
    assert spec.tags == {"team": "a", "cost_centre": "b"}


def test_load_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(MINIMAL_YAML)
    assert load_spec_file(path) == load_spec_text(MINIMAL_YAML)


# -- bad specs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A bad spec: the text or document, and the phrases its error message must contain."""

    id: str
    spec: str | dict[str, Any] | list[Any]
    phrases: tuple[str, ...]
    problem: str | None = None
    """The ``path:`` a single entry of ``SpecError.problems`` starts with, if any."""


BAD_SPECS = [
    Bad(
        "unknown-field",
        doc(nmae="x"),
        ("nmae: unknown field", "valid fields here are", "name", "command", "resources"),
        "nmae:",
    ),
    Bad(
        "unknown-nested-field",
        doc(resources={"cpus": 2}),
        ("resources.cpus: unknown field", "cpus_per_task", "walltime", "mem"),
        "resources.cpus:",
    ),
    Bad(
        "unknown-deep-field",
        doc(retry={"backoff": {"initial": "1s", "maximum": "1h"}}),
        ("retry.backoff.maximum: unknown field", "factor", "initial", "jitter", "max"),
        "retry.backoff.maximum:",
    ),
    Bad(
        "wrong-type",
        doc(resources={"nodes": "many"}),
        ("resources.nodes", "integer", "'many'"),
        "resources.nodes:",
    ),
    Bad("wrong-type-command", doc(command="python run.py"), ("command", "tuple"), "command:"),
    Bad(
        "negative-cpus",
        doc(resources={"cpus_per_task": -1}),
        ("resources.cpus_per_task", "greater than or equal to 1"),
        "resources.cpus_per_task:",
    ),
    Bad(
        "negative-gpus",
        doc(resources={"gpus": -2}),
        ("resources.gpus", "greater than or equal to 0"),
        "resources.gpus:",
    ),
    Bad(
        "zero-nodes",
        doc(resources={"nodes": 0}),
        ("resources.nodes", "greater than or equal to 1"),
        "resources.nodes:",
    ),
    Bad(
        "negative-memory", doc(resources={"mem": "-4G"}), ("resources.mem", "4G"), "resources.mem:"
    ),
    Bad("zero-memory", doc(resources={"mem": 0}), ("resources.mem", "positive"), "resources.mem:"),
    Bad(
        "memory-words",
        doc(resources={"mem": "lots"}),
        ("resources.mem", "'lots' is not an amount of memory", "512M"),
        "resources.mem:",
    ),
    Bad(
        "walltime-abc",
        doc(resources={"walltime": "abc"}),
        ("resources.walltime", "'abc' is not a duration", "90m", "D-HH:MM:SS"),
        "resources.walltime:",
    ),
    Bad(
        "walltime-zero",
        doc(resources={"walltime": 0}),
        ("resources.walltime", "positive duration"),
        "resources.walltime:",
    ),
    Bad(
        "walltime-negative",
        doc(resources={"walltime": "-5"}),
        ("resources.walltime", "positive duration"),
        "resources.walltime:",
    ),
    Bad(
        "walltime-bool",
        doc(resources={"walltime": True}),
        ("resources.walltime", "not a duration"),
        "resources.walltime:",
    ),
    Bad(
        "empty-command",
        doc(command=[]),
        ("command", "the command is empty", "[python, run.py]"),
        "command:",
    ),
    Bad("blank-program", doc(command=["  ", "x"]), ("command", "the command is empty"), "command:"),
    Bad(
        "command-and-script", doc(script="echo hi"), ("exactly one of 'command'", "'script'"), None
    ),
    Bad(
        "neither-command-nor-script",
        doc(command=None),
        ("exactly one of 'command'", "'script'"),
        None,
    ),
    Bad("empty-script", doc(command=None, script="  \n"), ("the script is empty",), None),
    Bad(
        "yaml-syntax",
        "apiVersion: hpcbridge/v1\nkind: Job\nname: [unclosed\n",
        ("invalid YAML at line", "column"),
        None,
    ),
    Bad(
        "yaml-tab-indent",
        "apiVersion: hpcbridge/v1\nresources:\n\tnodes: 2\n",
        ("invalid YAML at line 3",),
        None,
    ),
    Bad(
        "json-syntax",
        '{"apiVersion": "hpcbridge/v1", "kind": "Job",,}',
        ("invalid JSON at line 1, column",),
        None,
    ),
    Bad(
        "yaml-list",
        "- apiVersion: hpcbridge/v1\n- kind: Job\n",
        ("a job spec is a mapping, got list", "apiVersion: hpcbridge/v1"),
        None,
    ),
    Bad("scalar-document", "just some words", ("a job spec is a mapping, got str",), None),
    Bad("empty-document", "", ("expected one YAML document, found 0",), None),
    Bad(
        "two-documents",
        MINIMAL_YAML + "---\n" + MINIMAL_YAML,
        ("expected one YAML document, found 2",),
        None,
    ),
    Bad(
        "missing-apiversion",
        {"kind": "Job", "name": "x", "command": ["true"]},
        ("apiVersion: required field is missing; add it",),
        "apiVersion:",
    ),
    Bad(
        "wrong-apiversion",
        doc(apiVersion="hpcbridge/v2"),
        ("apiVersion", "'hpcbridge/v1'", "'hpcbridge/v2'"),
        "apiVersion:",
    ),
    Bad("wrong-kind", doc(kind="Pod"), ("kind", "'Job'", "'Pod'"), "kind:"),
    Bad(
        "missing-name",
        {"apiVersion": "hpcbridge/v1", "kind": "Job", "command": ["x"]},
        ("name: required field is missing",),
        "name:",
    ),
    Bad(
        "bad-name",
        doc(name="my job!"),
        ("name", "'my job!' is not a valid name", "letters, digits"),
        "name:",
    ),
    Bad(
        "reserved-env",
        doc(env={"HPCBRIDGE_JOB_ID": "x"}),
        ("env", "'HPCBRIDGE_JOB_ID'", "reserved"),
        "env:",
    ),
    Bad("bad-env-name", doc(env={"1X": "y"}), ("env", "'1X' is not valid"), "env:"),
    Bad(
        "gpu-type-without-gpus",
        doc(resources={"gpu_type": "a100"}),
        ("resources", "gpu_type is set but gpus is 0", "set gpus"),
        "resources:",
    ),
    Bad(
        "licence-count",
        doc(licences={"matlab": 0}),
        ("licences", "'matlab'", "at least 1"),
        "licences:",
    ),
    Bad(
        "checksum-form",
        doc(stage_in=[{"source": "a", "dest": "b", "checksum": "abc"}]),
        ("stage_in.0.checksum", "pattern"),
        "stage_in.0.checksum:",
    ),
    Bad(
        "unknown-failure-class",
        doc(retry={"retry_on": ["bad_luck"]}),
        ("retry.retry_on", "'node_failure'", "'bad_luck'"),
        None,
    ),
    Bad("array-empty", doc(array={}), ("array", "needs 'indices'", "'params'"), "array:"),
    Bad(
        "array-param-without-values",
        doc(array={"params": {"lr": []}}),
        ("array", "param 'lr' has no values"),
        "array:",
    ),
    Bad(
        "priority-range",
        doc(priority=5000),
        ("priority", "less than or equal to 1000"),
        "priority:",
    ),
]


@pytest.mark.parametrize("bad", BAD_SPECS, ids=[b.id for b in BAD_SPECS])
def test_bad_spec_error_names_field_and_fix(bad: Bad) -> None:
    with pytest.raises(SpecError) as caught:
        if isinstance(bad.spec, str):
            load_spec_text(bad.spec, source="job.yaml")
        else:
            load_spec_document(bad.spec, source="job.yaml")
    error = caught.value
    text = str(error)
    assert text.startswith("job.yaml: ")
    for phrase in bad.phrases:
        assert phrase in text, f"{phrase!r} missing from {text!r}"
    assert error.exit_code == 2
    if bad.problem is not None:
        assert [p for p in error.problems if p.startswith(bad.problem)], error.problems


def test_missing_required_tags_name_each_tag() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_document(doc(tags={"team": "ml"}), required_tags=("team", "cost_centre"))
    assert caught.value.problems == [
        "tags.cost_centre: required tag is missing (HPCBRIDGE_REQUIRED_TAGS=team,cost_centre); "
        "add it, e.g. tags: {cost_centre: <value>}"
    ]


def test_several_problems_are_all_listed() -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_document(doc(resources={"nodes": 0, "walltime": "soon"}, nmae="x"))
    error = caught.value
    assert len(error.problems) == 3
    assert "3 problems" in str(error)
    for path in ("resources.nodes", "resources.walltime", "nmae"):
        assert path in str(error)


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec_file(tmp_path / "nope.yaml")


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(MINIMAL_YAML + "# " + "x" * 1_100_000 + "\n")
    with pytest.raises(SpecError, match="the limit is"):
        load_spec_file(path)


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec_file(path)


# -- numbers that are not numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "resources: {walltime: .nan}",
        "resources: {walltime: inf}",
        "resources: {mem: .inf}",
        "resources: {mem: .nan}",
    ],
)
def test_nan_and_infinity_are_spec_errors(text: str) -> None:
    """A walltime of NaN or infinity is no walltime; it must fail validation, not later.

    Today ``walltime: .inf`` loads (and then ``to_document()`` crashes in format_duration)
    and ``mem: .inf`` escapes as OverflowError instead of SpecError.
    """
    with pytest.raises(SpecError) as caught:
        load_spec_text(MINIMAL_YAML + text + "\n")
    assert caught.value.problems


def test_json_infinity_memory_is_a_spec_error() -> None:
    text = json.dumps(doc()).rstrip("}") + ', "resources": {"mem": Infinity}}'
    with pytest.raises(SpecError):
        load_spec_text(text)


def test_every_loaded_spec_can_be_written_back() -> None:
    spec: JobSpec = load_spec_text(MINIMAL_YAML)
    assert load_spec_document(spec.to_document()) == spec
