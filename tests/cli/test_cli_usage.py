"""Usage errors of the installed ``hpcbridge``: one clear line, exit 2, never a traceback;
``--version`` and shell completion."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error, installed_entry_point

SPEC = "apiVersion: hpcbridge/v1\nkind: Job\nname: t\ncommand: [sleep, '30']\n"

# args, what the error line says, the command its "Try ... --help" names
USAGE_ERRORS = {
    "no arguments": ((), "missing command; one of: validate, submit, run", "hpcbridge"),
    "unknown option": (("--bogus",), "no such option: --bogus", "hpcbridge"),
    "unknown command": (("nosuch",), "no such command 'nosuch'", "hpcbridge"),
    "misspelt command": (("lsit",), "Did you mean 'list'", "hpcbridge"),
    "missing argument": (("run",), "missing argument 'file'", "hpcbridge run"),
    "option of a command": (("list", "--bogus"), "no such option: --bogus", "hpcbridge list"),
    "not a number": (("list", "--limit", "x"), "'--limit'", "hpcbridge list"),
    "below the minimum": (("list", "--limit", "0"), "'--limit'", "hpcbridge list"),
    "not a state": (("list", "--state", "bogus"), "'bogus' is not a job state", "hpcbridge list"),
    "missing option value": (("list", "--limit"), "'--limit' requires an argument", None),
    "group without command": (("slo",), "missing command; one of: report", "hpcbridge slo"),
    "dashboards alone": (("dashboards",), "missing command; one of: export", None),
    "nodes option": (("nodes", "--bogus"), "no such option: --bogus", "hpcbridge nodes"),
    "run timeout negative": (
        ("run", "spec.yaml", "--timeout", "-1"),
        "'--timeout': '-1' must be a positive duration",
        "hpcbridge run",
    ),
    "run timeout not a duration": (
        ("run", "spec.yaml", "--timeout", "abc"),
        "'--timeout': 'abc' is not a duration; use seconds or units like 45s",
        "hpcbridge run",
    ),
    "wait timeout negative": (
        ("wait", "j1", "--timeout", "-5"),
        "'--timeout': '-5' must be a positive duration",
        "hpcbridge wait",
    ),
    "wait timeout nan": (("wait", "j1", "--timeout", "nan"), "'--timeout'", "hpcbridge wait"),
    "output into a missing directory": (
        ("slo", "rules", "--out", "no/such/dir/rules.yaml"),
        "'--out': directory no/such/dir does not exist; create it first",
        "hpcbridge slo rules",
    ),
    "output onto a directory": (
        ("slo", "rules", "--out", "."),
        "'--out': . is a directory; give a file name",
        "hpcbridge slo rules",
    ),
    "dashboards into a file": (
        ("dashboards", "export", "spec.yaml/sub"),
        "spec.yaml is a file; give a directory",
        "hpcbridge dashboards export",
    ),
}


@pytest.fixture(autouse=True)
def _spec_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_is_one_line_and_exit_2(case: str, hpcbridge: RunHpcbridge) -> None:
    args, expected, try_command = USAGE_ERRORS[case]
    result = hpcbridge(*args)
    line = assert_one_line_usage_error(result)
    assert expected in line, line
    assert result.stdout == ""
    if try_command is not None:
        assert result.stderr.splitlines()[1] == f"Try '{try_command} --help' for help."


def test_version_prints_the_installed_version(hpcbridge: RunHpcbridge) -> None:
    result = hpcbridge("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hpcbridge {metadata.version('hpcbridge')}\n"
    assert result.stderr == ""


def test_help_exits_0(hpcbridge: RunHpcbridge) -> None:
    result = hpcbridge("--help")
    assert result.returncode == 0, result.stderr
    assert "--version" in result.stdout and "--show-completion" in result.stdout


def test_a_timeout_that_runs_out_says_the_job_goes_on(hpcbridge: RunHpcbridge) -> None:
    result = hpcbridge("run", "spec.yaml", "--timeout", "0.5", env={"HPCBRIDGE_KILL_GRACE_S": "1"})
    try:
        line = assert_one_line_usage_error(result)
        assert "--timeout 0.5s ran out before" in line, line
        assert "'hpcbridge wait" in line and "'hpcbridge cancel" in line, line
    finally:
        job_id = result.stdout.split()[0] if result.stdout else None
        if job_id:
            hpcbridge("cancel", job_id, env={"HPCBRIDGE_KILL_GRACE_S": "1"})


# -- shell completion ------------------------------------------------------------------------


def test_completion_of_a_command_name(hpcbridge: RunHpcbridge) -> None:
    """What the shell asks through the completion scripts: 'hpcbridge li<TAB>'."""
    result = hpcbridge(
        env={
            "_HPCBRIDGE_COMPLETE": "complete_bash",
            "COMP_WORDS": "hpcbridge li",
            "COMP_CWORD": "1",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["list"]


def test_completion_of_a_subcommand(hpcbridge: RunHpcbridge) -> None:
    result = hpcbridge(
        env={
            "_HPCBRIDGE_COMPLETE": "complete_bash",
            "COMP_WORDS": "hpcbridge slo r",
            "COMP_CWORD": "2",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["report", "rules"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_show_completion_gives_a_bash_script_that_completes(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """--show-completion from bash, loaded into bash, completes 'hpcbridge li' to 'list'."""
    script = installed_entry_point()
    # 'true' keeps bash the parent of hpcbridge (it would exec a lone command), so that
    # typer detects the shell.
    program = (
        'eval "$(hpcbridge --show-completion; true)"\n'
        "function_name=$(complete -p hpcbridge | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n"
        "COMP_WORDS=(hpcbridge li); COMP_CWORD=1\n"
        '"$function_name" hpcbridge\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = cli_env | {"PATH": f"{script.parent}:{cli_env.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", program],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["list"], (result.stdout, result.stderr)
