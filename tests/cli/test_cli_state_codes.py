"""``list --state`` takes hpcbridge's states and Slurm's codes, in any case, through the
installed ``hpcbridge``; anything else is a one-line usage error."""

from __future__ import annotations

import pytest

from tests.cli._home import as_json, runner, spec
from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunHpcbridge, dict[str, str]]:
    where = tmp_path_factory.mktemp("codes")
    run = runner(where / "home", where)
    ids = {}
    for name, command in (("good", "['true']"), ("bad", "['false']")):
        done = run("run", spec(where, name, f"command: {command}\n"))
        assert done.returncode in (0, 1), done.stderr
        ids[name] = as_json(run("list", "--name", name, "--json"))[0]["job_id"]
    return run, ids


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("CD", {"good"}),
        ("cd", {"good"}),
        ("Completed", {"good"}),
        ("succeeded", {"good"}),
        ("F", {"bad"}),
        ("failed", {"bad"}),
        ("PD", set()),
        ("r", set()),
        ("TO", set()),  # failed, but not by its time limit
    ],
)
def test_state_codes(
    ran: tuple[RunHpcbridge, dict[str, str]], code: str, expected: set[str]
) -> None:
    run, _ = ran
    listed = as_json(run("list", "--state", code, "--json"))
    assert {job["name"] for job in listed} == expected


def test_several_states_add_up(ran: tuple[RunHpcbridge, dict[str, str]]) -> None:
    run, _ = ran
    listed = as_json(run("list", "--state", "CD", "--state", "f", "--json"))
    assert {job["name"] for job in listed} == {"good", "bad"}


def test_an_unknown_state_is_a_usage_error(ran: tuple[RunHpcbridge, dict[str, str]]) -> None:
    run, _ = ran
    line = assert_one_line_usage_error(run("list", "--state", "XX"))
    assert "'XX' is not a job state" in line
    assert "PD, CF" in line and "succeeded" in line
