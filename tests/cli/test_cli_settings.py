"""Invalid HPCBRIDGE_* settings and unusable data directories: one line naming the variable
and the fix, exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error

# variable, value, what the error line says
BAD_SETTINGS = {
    "poll interval not a number": (
        "HPCBRIDGE_POLL_INTERVAL_S",
        "abc",
        "HPCBRIDGE_POLL_INTERVAL_S='abc' is invalid; set it to a number greater than 0 "
        "(seconds), e.g. 0.5",
    ),
    "poll interval negative": (
        "HPCBRIDGE_POLL_INTERVAL_S",
        "-1",
        "set it to a number greater than 0",
    ),
    "cpus zero": ("HPCBRIDGE_LOCAL_CPUS", "0", "set it to a whole number at least 1"),
    "fraction above 1": (
        "HPCBRIDGE_QUARANTINE_MAX_DRAINED_FRACTION",
        "2",
        "set it to a number at least 0 and at most 1",
    ),
    "database url": ("HPCBRIDGE_DATABASE_URL", "foo", "set it to an SQLAlchemy URL"),
    "required tags, broken JSON": (
        "HPCBRIDGE_REQUIRED_TAGS",
        "[team",
        "set it to tag keys, comma-separated or a JSON list",
    ),
    "a long value is shortened": (
        "HPCBRIDGE_KILL_GRACE_S",
        "x" * 10_000,
        "='xxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxxxxxxxxxxxx' is invalid",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
@pytest.mark.parametrize("command", [("list",), ("status", "j1"), ("why", "j1")])
def test_bad_setting_names_the_variable_and_the_form(
    case: str, command: tuple[str, ...], hpcbridge: RunHpcbridge
) -> None:
    variable, value, expected = BAD_SETTINGS[case]
    line = assert_one_line_usage_error(hpcbridge(*command, env={variable: value}))
    assert line.startswith(f"error: {variable}="), line
    assert expected in line, line
    assert len(line) < 300, line


def test_required_tags_as_a_comma_separated_list(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("apiVersion: hpcbridge/v1\nkind: Job\nname: t\ncommand: ['true']\n")
    result = hpcbridge("validate", str(spec), env={"HPCBRIDGE_REQUIRED_TAGS": "team, cost"})
    assert result.returncode == 2
    assert "tags.team: required tag is missing" in result.stderr
    assert "tags.cost: required tag is missing" in result.stderr


def test_home_that_is_a_file(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("")
    for command in (("list",), ("why", "j1"), ("slo", "report")):
        line = assert_one_line_usage_error(hpcbridge(*command, env={"HPCBRIDGE_HOME": str(home)}))
        assert line == (
            f"error: HPCBRIDGE_HOME={home} is a file, not a directory; "
            "set HPCBRIDGE_HOME to a directory you can write to"
        )


def test_default_home_that_cannot_be_created(
    hpcbridge: RunHpcbridge, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """No HPCBRIDGE_HOME, and HOME below a regular file (tests run as root, so a directory
    without write permission would still be writable)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    del cli_env["HPCBRIDGE_HOME"]
    cli_env.pop("XDG_DATA_HOME", None)
    line = assert_one_line_usage_error(hpcbridge("list", env={"HOME": str(blocker / "home")}))
    assert f"the data directory {blocker}/home/" in line, line
    assert "(the default) cannot be used (not a directory)" in line, line
    assert line.endswith("set HPCBRIDGE_HOME to a directory you can write to"), line


def test_home_below_a_file(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = blocker / "home"
    line = assert_one_line_usage_error(hpcbridge("list", env={"HPCBRIDGE_HOME": str(home)}))
    assert line.startswith(f"error: HPCBRIDGE_HOME={home} cannot be used (not a directory)")
