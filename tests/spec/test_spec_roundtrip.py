"""Units and documents survive a write-then-read: durations, memory and whole JobSpecs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hpcbridge.spec import (
    JobSpec,
    format_duration,
    load_spec_document,
    load_spec_text,
    parse_duration_s,
    parse_memory_mb,
)
from hpcbridge.states import FailureClass

# -- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(45, "45s"), (60, "1m"), (5400, "1h30m"), (86400, "1d"), (90061, "1d1h1m1s"), (0.5, "0.5s")],
)
def test_format_duration_is_short(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**12))
def test_whole_seconds_round_trip(seconds: int) -> None:
    assert parse_duration_s(format_duration(seconds)) == seconds


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False))
@example(0.1234567)
@example(1234567.5)
@example(1e-7)
@settings(max_examples=300)
def test_fractional_seconds_round_trip(seconds: float) -> None:
    """format_duration promises to be exact; ``{:g}`` keeps only six significant digits."""
    assert parse_duration_s(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(["", "M", "MB", "m"]))
def test_megabytes_parse_exactly(megabytes: int, unit: str) -> None:
    assert parse_memory_mb(f"{megabytes}{unit}") == megabytes


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["G", "GB", "GiB", "g"]))
def test_gigabytes_are_1024_megabytes(gigabytes: int, unit: str) -> None:
    assert parse_memory_mb(f"{gigabytes}{unit}") == gigabytes * 1024


@given(
    st.integers(min_value=0, max_value=99),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_slurm_clock_form(days: int, hours: int, minutes: int, secs: int) -> None:
    total = days * 86400 + hours * 3600 + minutes * 60 + secs
    text = f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if total == 0:
        with pytest.raises(ValueError, match="positive"):
            parse_duration_s(text)
    else:
        assert parse_duration_s(text) == total


# -- whole documents -------------------------------------------------------------------------

_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_env_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not n.startswith("HPCBRIDGE_")
)
_text = st.text(max_size=20)
# Fractions stay below 1000 s here: larger ones hit the format_duration precision bug that
# test_fractional_seconds_round_trip shows on its own.
_seconds = st.one_of(
    st.integers(min_value=1, max_value=10**7),
    st.integers(min_value=1, max_value=3999).map(lambda n: n / 4),
)


@st.composite
def spec_documents(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": draw(_name)}
    if draw(st.booleans()):
        document["command"] = [
            draw(_text.filter(lambda t: bool(t.strip()))),
            *draw(st.lists(_text, max_size=4)),
        ]
    else:
        document["script"] = "#!/bin/sh\n" + draw(_text)
    if draw(st.booleans()):
        document["project"] = draw(_name)
    document["tags"] = draw(st.dictionaries(_name, _text, max_size=3))
    document["env"] = draw(st.dictionaries(_env_name, _text, max_size=3))
    resources: dict[str, Any] = {}
    if draw(st.booleans()):
        resources["walltime"] = draw(_seconds)
    if draw(st.booleans()):
        resources["mem"] = draw(st.integers(min_value=1, max_value=10**7))
    if draw(st.booleans()):
        resources["gpus"] = draw(st.integers(min_value=1, max_value=8))
        if draw(st.booleans()):
            resources["gpu_type"] = draw(_name)
    resources["nodes"] = draw(st.integers(min_value=1, max_value=64))
    resources["cpus_per_task"] = draw(st.integers(min_value=1, max_value=128))
    document["resources"] = resources
    document["priority"] = draw(st.integers(min_value=-1000, max_value=1000))
    if draw(st.booleans()):
        document["checkpoint"] = {
            "interval": draw(st.one_of(st.just("auto"), _seconds)),
            "keep": draw(st.integers(min_value=1, max_value=10)),
            "grace": draw(_seconds),
        }
    document["retry"] = {
        "max_attempts": draw(st.integers(min_value=1, max_value=100)),
        "backoff": {
            "initial": draw(_seconds),
            "max": draw(_seconds),
            "factor": draw(st.sampled_from([1.0, 1.5, 2.0, 10.0])),
        },
        "retry_on": draw(st.lists(st.sampled_from(list(FailureClass)), unique=True)),
        "per_class_max": draw(
            st.dictionaries(
                st.sampled_from(list(FailureClass)),
                st.integers(min_value=1, max_value=9),
                max_size=2,
            )
        ),
    }
    if draw(st.booleans()):
        array: dict[str, Any] = {}
        if draw(st.booleans()):
            array["indices"] = draw(st.sampled_from(["0-9", "1-9:2", "1,3,5-7"]))
        if "indices" not in array or draw(st.booleans()):
            array["params"] = draw(
                st.dictionaries(
                    _env_name,
                    st.lists(
                        st.one_of(st.integers(-5, 5), _name, st.booleans()), min_size=1, max_size=3
                    ),
                    min_size=1,
                    max_size=2,
                )
            )
        if draw(st.booleans()):
            array["throttle"] = draw(st.integers(min_value=1, max_value=10))
        document["array"] = array
    return document


@given(spec_documents())
@settings(max_examples=150, deadline=None)
def test_to_document_reloads_to_an_equal_spec(document: dict[str, Any]) -> None:
    spec = load_spec_document(document)
    written = spec.to_document()
    assert load_spec_document(written) == spec
    assert load_spec_text(json.dumps(written)) == spec


def test_to_document_uses_human_units_and_aliases(make_spec: Callable[..., JobSpec]) -> None:
    spec: JobSpec = make_spec(resources={"walltime": 5400, "mem": "2G"})
    written = spec.to_document()
    assert written["apiVersion"] == "hpcbridge/v1"
    assert written["kind"] == "Job"
    assert written["resources"] == {"walltime": "1h30m", "mem": 2048}
    assert "retry" not in written  # defaults are left out
