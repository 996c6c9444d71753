"""The SLO file model: the example and defaults load, and errors name the field and fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.slo import (
    PLATFORM_BAD_CLASSES,
    SloConfigError,
    SloDefinition,
    default_slos,
    load_slo_document,
    load_slo_file,
    load_slo_text,
)
from hpcbridge.slo._duration import format_duration, parse_duration_s

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "slo.yaml"

MINIMAL: dict[str, Any] = {
    "apiVersion": "hpcbridge/v1",
    "kind": "SLOList",
    "slos": [
        {
            "name": "jobs",
            "objective": 0.99,
            "sli": {
                "ratio": {
                    "total": {"metric": "hpcbridge_jobs_finished_total"},
                    "bad": {
                        "metric": "hpcbridge_jobs_finished_total",
                        "where": {"outcome": "failed"},
                    },
                }
            },
        }
    ],
}


def test_example_file_is_valid_and_complete() -> None:
    loaded = load_slo_file(EXAMPLE)
    names = [slo.name for slo in loaded.slos]
    defaults = [slo.name for slo in default_slos()]
    assert names[: len(defaults)] == defaults
    kinds = {
        "ratio" if s.sli.ratio else "threshold" if s.sli.threshold else "band" for s in loaded.slos
    }
    assert kinds == {"ratio", "threshold", "band"}
    assert loaded.evaluation_interval == 60


def test_example_matches_the_built_in_defaults() -> None:
    by_name = {slo.name: slo for slo in load_slo_file(EXAMPLE).slos}
    for slo in default_slos():
        assert by_name[slo.name].sli == slo.sli, slo.name
        assert by_name[slo.name].objective == slo.objective, slo.name


def test_defaults() -> None:
    slos = {slo.name: slo for slo in default_slos()}
    assert set(PLATFORM_BAD_CLASSES) == {"node_failure", "preempted", "lost", "backend_unavailable"}
    assert slos["job-success-critical"].workload_class == "critical"
    assert slos["job-success-critical"].objective == 0.99
    threshold = slos["queue-wait-priority"].sli.threshold
    assert threshold is not None and threshold.le == 3600
    band = slos["gpu-utilization-band"].sli.band
    assert band is not None and (band.min, band.max) == (0.6, 0.8)
    assert slos["platform-success"].alerting.page  # pages
    assert not slos["checkpoint-overhead"].alerting.page  # tickets only


def test_round_trip_through_dump() -> None:
    loaded = load_slo_file(EXAMPLE)
    again = load_slo_document(loaded.model_dump(by_alias=True, mode="json"))
    assert again == loaded


def _with(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(MINIMAL)
    node: Any = document
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("slos.0.bogus", 1, "slos.0.bogus: unknown field; valid fields here are: alerting,"),
        ("slos.0.objective", 1.0, "slos.0.objective: Input should be less than 1"),
        ("slos.0.name", "Bad Name", "name: 'Bad Name' is not valid; use 1-63 lower-case"),
        ("slos.0.window", "30 days", "is not a duration; write a whole number and one unit"),
        ("slos.0.workload_class", "a b", "workload_class: 'a b' is not valid"),
        (
            "slos.0.sli.ratio.total.metric",
            "node_cpu_seconds_total",
            "is not a counter series of hpcbridge; use one of:",
        ),
        (
            "slos.0.sli.ratio.bad.where",
            {"outcome": "crashed"},
            "where.outcome: unknown value(s) 'crashed'; valid values are: 'cancelled', 'failed'",
        ),
        (
            "slos.0.sli.ratio.bad.where",
            {"backend": "slurm"},
            "where.backend: hpcbridge_jobs_finished_total has no label 'backend'",
        ),
        (
            "slos.0.sli.ratio.bad.where",
            {"workload_class": "x"},
            "select the class with the SLO's workload_class field instead",
        ),
        (
            "slos.0.sli.ratio.good",
            {"metric": "hpcbridge_jobs_finished_total"},
            "set exactly one of good or bad next to total",
        ),
        (
            "slos.0.sli.threshold",
            {"metric": "hpcbridge_queue_wait_seconds", "le": 3600},
            "set exactly one of ratio, threshold or band",
        ),
        (
            "slos.0.alerting.page",
            [{"long": "5m", "short": "1h", "burn_rate": 2}],
            "short (1h) must be shorter than long (5m)",
        ),
        (
            "slos.0.alerting.ticket",
            [{"long": "60d", "short": "1d", "burn_rate": 1}],
            "alerting.ticket[0].long: 60d is longer than the SLO window 30d",
        ),
        ("slos.0.objective", 0.9, "alerting.page[0].burn_rate: 14.4 x error budget 0.1"),
        ("apiVersion", "v2", "apiVersion: Input should be 'hpcbridge/v1'"),
    ],
)
def test_errors_name_field_and_fix(path: str, value: Any, expected: str) -> None:
    with pytest.raises(SloConfigError) as info:
        load_slo_document(_with(path, value), source="slo.yaml")
    assert expected in str(info.value), info.value.problems
    assert str(info.value).startswith("slo.yaml: ")


def test_threshold_must_sit_on_a_bucket() -> None:
    document = copy.deepcopy(MINIMAL)
    document["slos"][0]["sli"] = {
        "threshold": {"metric": "hpcbridge_queue_wait_seconds", "le": 3000}
    }
    with pytest.raises(SloConfigError, match=r"le: 3000 is not a bucket bound.*3600"):
        load_slo_document(document)


def test_band_needs_a_bound() -> None:
    document = copy.deepcopy(MINIMAL)
    document["slos"][0]["sli"] = {"band": {"metric": "hpcbridge_gpu_utilization_ratio"}}
    document["slos"][0]["objective"] = 0.5
    with pytest.raises(SloConfigError, match="set min, max or both"):
        load_slo_document(document)


def test_duplicate_names() -> None:
    document = copy.deepcopy(MINIMAL)
    document["slos"].append(copy.deepcopy(document["slos"][0]))
    with pytest.raises(SloConfigError, match=r"slos.1.name: 'jobs' is used twice; rename one"):
        load_slo_document(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "an SLO file is a mapping, got list"),
        ("a: [", "invalid YAML at line"),
        ("apiVersion: hpcbridge/v1\nkind: SLOList\nslos: []\n", "define at least one SLO"),
    ],
)
def test_text_errors(text: str, message: str) -> None:
    with pytest.raises(SloConfigError, match=message):
        load_slo_text(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SloConfigError, match="no such file"):
        load_slo_file(tmp_path / "nope.yaml")


def test_multiple_problems_are_listed() -> None:
    document = _with("slos.0.objective", 2)
    document["slos"][0]["nope"] = True
    with pytest.raises(SloConfigError) as info:
        load_slo_document(document)
    assert len(info.value.problems) == 2
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("5m", 300, "5m"),
        ("1h", 3600, "1h"),
        ("30d", 2592000, "30d"),
        ("90s", 90, "90s"),
        ("2w", 1209600, "14d"),
        (120, 120, "2m"),
    ],
)
def test_durations(text: str | int, seconds: int, canonical: str) -> None:
    assert parse_duration_s(text) == seconds
    assert format_duration(seconds) == canonical


@pytest.mark.parametrize("bad", ["", "1.5h", "0m", "-1h", "1y", True, 0, "1h30m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(bad)


def test_definition_is_importable_standalone() -> None:
    slo = SloDefinition.model_validate(MINIMAL["slos"][0])
    assert slo.error_budget == pytest.approx(0.01)
    assert slo.window == 30 * 86400
