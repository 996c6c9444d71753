"""Array and sweep expansion: index lists, parameter grids, substitution and limits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from hpcbridge.errors import SpecError
from hpcbridge.spec import (
    MAX_TASKS,
    JobSpec,
    expand,
    load_spec_document,
    parse_indices,
    task_count,
    task_documents,
)


@pytest.mark.parametrize(
    ("text", "indices"),
    [
        ("0-19", list(range(20))),
        ("1-9:2", [1, 3, 5, 7, 9]),
        ("1-10:3", [1, 4, 7, 10]),
        ("1,3,5-7", [1, 3, 5, 6, 7]),
        ("7", [7]),
        (" 2 , 1 ", [1, 2]),
        ("1-3,2-4", [1, 2, 3, 4]),
        ("5-5", [5]),
    ],
)
def test_index_forms(text: str, indices: list[int]) -> None:
    assert parse_indices(text) == indices


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "1,,2", "1:2", "1-9:", "0x10", "1..5"])
def test_malformed_indices(text: str) -> None:
    with pytest.raises(SpecError, match=r"array\.indices: .* is not an index list; use e\.g\."):
        parse_indices(text)


@pytest.mark.parametrize("text", ["5-1", "1-9:0"])
def test_empty_or_reversed_ranges(text: str) -> None:
    with pytest.raises(SpecError, match="empty or reversed range"):
        parse_indices(text)


def test_exactly_max_tasks_is_allowed() -> None:
    assert len(parse_indices(f"0-{MAX_TASKS - 1}")) == MAX_TASKS


def test_more_than_max_tasks_is_refused() -> None:
    with pytest.raises(SpecError, match=f"more than {MAX_TASKS} tasks; split the sweep"):
        parse_indices(f"0-{MAX_TASKS}")


def test_overlapping_ranges_count_distinct_tasks() -> None:
    """Indices are a set: an overlap does not make a list of MAX_TASKS tasks too long."""
    assert len(parse_indices(f"0-{MAX_TASKS - 1},0-10")) == MAX_TASKS


def test_huge_range_is_refused_without_building_it() -> None:
    """``0-99999999999`` must be a SpecError, not an attempt to list 10**11 integers.

    Run in a child process with a 1 GiB address-space limit, so the current behaviour
    (build the whole range, then count) fails fast instead of eating the machine's memory.
    """
    program = textwrap.dedent(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from hpcbridge.errors import SpecError
        from hpcbridge.spec import parse_indices
        try:
            parse_indices("0-99999999999")
        except SpecError as exc:
            print("SpecError:", exc)
            sys.exit(0)
        except BaseException as exc:
            print(type(exc).__name__, exc)
            sys.exit(1)
        sys.exit(2)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "split the sweep" in result.stdout


def sweep(make_spec: Callable[..., JobSpec], **array: Any) -> JobSpec:
    return make_spec(
        command=["train", "--lr={lr}", "--bs={bs}", "--task={index}", "{HOME}"],
        env={"RUN": "{lr}-{bs}", "PLAIN": "x"},
        array=array,
    )


def test_parameter_grid_is_the_cross_product(make_spec: Callable[..., JobSpec]) -> None:
    spec = sweep(make_spec, params={"lr": [0.1, 0.01], "bs": [16, 32, 64]})
    assert spec.array is not None
    tasks = expand(spec)
    assert len(tasks) == task_count(spec.array) == 6
    assert [t.index for t in tasks] == list(range(6))
    assert [(t.params["lr"], t.params["bs"]) for t in tasks] == [
        ("0.1", "16"),
        ("0.1", "32"),
        ("0.1", "64"),
        ("0.01", "16"),
        ("0.01", "32"),
        ("0.01", "64"),
    ]
    first = tasks[4].spec
    assert first.command == ("train", "--lr=0.01", "--bs=32", "--task=4", "{HOME}")
    assert first.env == {"RUN": "0.01-32", "PLAIN": "x"}
    assert first.array is None


def test_indices_keep_their_numbers(make_spec: Callable[..., JobSpec]) -> None:
    spec = make_spec(command=["run", "{index}"], env={"I": "{index}"}, array={"indices": "1-9:2"})
    tasks = expand(spec)
    assert [t.index for t in tasks] == [1, 3, 5, 7, 9]
    assert [t.spec.command for t in tasks] == [("run", str(i)) for i in (1, 3, 5, 7, 9)]
    assert [t.spec.env["I"] for t in tasks] == ["1", "3", "5", "7", "9"]
    assert all(t.params == {} for t in tasks)


def test_indices_times_grid(make_spec: Callable[..., JobSpec]) -> None:
    spec = make_spec(
        command=["run", "{index}", "{x}"], array={"indices": "3-4", "params": {"x": ["a", "b"]}}
    )
    assert spec.array is not None
    tasks = expand(spec)
    assert task_count(spec.array) == len(tasks) == 4
    assert [t.index for t in tasks] == [0, 1, 2, 3]  # a grid numbers its points in order
    assert [t.spec.command for t in tasks] == [
        ("run", "3", "a"),
        ("run", "3", "b"),
        ("run", "4", "a"),
        ("run", "4", "b"),
    ]


def test_script_substitution_and_value_text(make_spec: Callable[..., JobSpec]) -> None:
    spec = make_spec(
        command=None,
        script="echo {flag} {n} {index}\n",
        array={"params": {"flag": [True, False], "n": [2.5]}},
    )
    tasks = expand(spec)
    assert [t.spec.script for t in tasks] == ["echo true 2.5 0\n", "echo false 2.5 1\n"]


def test_a_plain_job_expands_to_itself(make_spec: Callable[..., JobSpec]) -> None:
    spec = make_spec()
    [task] = expand(spec)
    assert task.index == 0
    assert task.params == {}
    assert task.spec is spec


def test_expanded_tasks_are_valid_specs(make_spec: Callable[..., JobSpec]) -> None:
    """The client stores each task's ``to_document()``; the reconciler must read it back."""
    spec = sweep(make_spec, indices="0-1", params={"lr": [1, 2], "bs": [8]})
    for task in expand(spec):
        assert load_spec_document(task.spec.to_document()) == task.spec


def test_grid_larger_than_max_tasks_is_refused(make_spec: Callable[..., JobSpec]) -> None:
    spec = make_spec(array={"indices": f"0-{MAX_TASKS // 10}", "params": {"x": list(range(10))}})
    with pytest.raises(SpecError, match=f"more than {MAX_TASKS} tasks"):
        expand(spec)


@pytest.mark.parametrize(
    ("array", "phrase"),
    [
        ({}, "needs 'indices'"),
        ({"params": {"lr": []}}, "param 'lr' has no values"),
        ({"params": {"not-an-id": [1]}}, "must be an identifier"),
        ({"indices": "0-3", "throttle": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_array_sections(
    make_spec: Callable[..., JobSpec], array: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(SpecError, match=phrase) as caught:
        make_spec(array=array)
    assert any(p.startswith("array") for p in caught.value.problems)


def test_task_documents_equal_each_tasks_own_dump() -> None:
    spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "grid",
            "command": ["run", "--lr", "{lr}", "--i", "{index}"],
            "env": {"LR": "{lr}"},
            "resources": {"mem": "2G", "walltime": "1h"},
            "array": {"indices": "0-2", "params": {"lr": [0.1, 0.01]}},
        }
    )
    pairs = task_documents(spec)
    assert len(pairs) == 6
    for task, document in pairs:
        assert document == task.spec.to_document()
    script_spec = load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": "s",
            "script": "echo {index}",
            "array": {"indices": "0-1"},
        }
    )
    for task, document in task_documents(script_spec):
        assert document == task.spec.to_document()
