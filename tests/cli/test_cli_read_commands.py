"""Read commands on a real data directory: status lists an array's tasks by index and says
where the outputs are, list --limit gives the newest, logs --json, reasons with rounded
durations, and exit code 127 said as "command not found"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpcbridge.cli._reasons import history_reason, missing_command, round_durations
from tests.cli._home import as_json, runner, spec
from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error

TASKS = 12
RAW_FLOAT_SECONDS = re.compile(r"\d+\.\d{2,}s\b")


@dataclass(frozen=True)
class Jobs:
    run: RunHpcbridge
    sweep: str
    talker: str
    not_found: str
    retrying: str
    singles: tuple[str, ...]


def _submit(run: RunHpcbridge, path: str) -> str:
    result = run("submit", path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    work = tmp_path_factory.mktemp("read")
    run = runner(work / "home", work)
    sweep = _submit(
        run,
        spec(
            work, "sweep", f"command: [echo, 'task {{index}}']\narray: {{indices: 0-{TASKS - 1}}}\n"
        ),
    )
    talker = _submit(
        run, spec(work, "talker", "command: [sh, -c, 'echo one; echo two; echo oops >&2']\n")
    )
    not_found = _submit(
        run, spec(work, "nf", "command: [sh, -c, 'echo start; nosuchcmd-xyz --flag']\n")
    )
    # Fails once, then waits for a retry 10 minutes (with jitter) away: a fractional delay.
    retrying = _submit(
        run,
        spec(
            work,
            "retrying",
            "command: [sh, -c, 'exit 3']\n"
            "retry: {max_attempts: 2, retry_on: [app_error], backoff: {initial: 10m}}\n",
        ),
    )
    waited = run("wait", sweep, talker, not_found)
    assert waited.returncode == 1, waited.stderr  # nf failed
    singles = []
    for index in range(3):
        single = _submit(run, spec(work, f"single{index}", "command: ['true']\n"))
        assert run("wait", single).returncode == 0
        singles.append(single)
    for _ in range(200):
        if as_json(run("status", retrying, "--json"))["job"]["state"] == "retry_wait":
            break
    yield Jobs(run, sweep, talker, not_found, retrying, tuple(singles))
    run("cancel", retrying)


# -- status: tasks in index order, where the outputs are -------------------------------------


def test_status_lists_tasks_in_numeric_order(jobs: Jobs) -> None:
    document = as_json(jobs.run("status", jobs.sweep, "--json"))
    assert [t["task_index"] for t in document["tasks"]] == list(range(TASKS))
    text = jobs.run("status", jobs.sweep).stdout
    rows = re.findall(rf"{jobs.sweep}\.(\d+)\s", text)
    assert [int(i) for i in rows] == list(range(TASKS)), text


def test_status_says_where_the_outputs_are(jobs: Jobs) -> None:
    outputs = as_json(jobs.run("status", jobs.talker, "--json"))["outputs"]
    assert outputs["attempt"] == 1
    stdout, stderr, work_dir = (Path(outputs[k]) for k in ("stdout", "stderr", "work_dir"))
    assert stdout.read_text() == "one\ntwo\n"
    assert stderr.read_text() == "oops\n"
    assert work_dir.is_dir()
    text = jobs.run("status", jobs.talker).stdout
    for label, path in (("stdout", stdout), ("stderr", stderr), ("work dir", work_dir)):
        assert re.search(rf"^{label}\s+{re.escape(str(path))}\s*$", text, re.MULTILINE), text


def test_status_of_a_job_without_attempts_has_no_outputs(jobs: Jobs) -> None:
    assert as_json(jobs.run("status", jobs.sweep, "--json"))["outputs"] is None


# -- list --limit: the newest ---------------------------------------------------------------


def test_list_limit_gives_the_newest_oldest_first(jobs: Jobs) -> None:
    listed = [j["job_id"] for j in as_json(jobs.run("list", "--limit", "2", "--json"))]
    assert listed == list(jobs.singles[1:])
    everything = [j["job_id"] for j in as_json(jobs.run("list", "--json"))]
    assert everything[-3:] == list(jobs.singles)
    assert everything[:1] == [jobs.sweep]
    text = jobs.run("list", "--limit", "2").stdout
    assert text.index(jobs.singles[1]) < text.index(jobs.singles[2]), text
    assert jobs.singles[0] not in text


def test_list_limit_with_tasks_orders_tasks_by_index(jobs: Jobs) -> None:
    listed = as_json(jobs.run("list", "--tasks", "--json"))
    tasks = [j["task_index"] for j in listed if j["parent_id"] == jobs.sweep]
    assert tasks == list(range(TASKS))


# -- logs --json --------------------------------------------------------------------------


def test_logs_json_gives_both_streams_with_paths_and_lines(jobs: Jobs) -> None:
    document = as_json(jobs.run("logs", jobs.talker, "--json"))
    assert (document["job_id"], document["attempt"], document["state"]) == (
        jobs.talker,
        1,
        "succeeded",
    )
    assert document["stdout"]["lines"] == ["one", "two"]
    assert document["stderr"]["lines"] == ["oops"]
    assert document["stdout"]["exists"] is True
    assert Path(document["stdout"]["path"]).read_text() == "one\ntwo\n"
    tail = as_json(jobs.run("logs", jobs.talker, "--json", "--tail", "1"))
    assert tail["stdout"]["lines"] == ["two"]


def test_logs_tail_prints_the_last_lines(jobs: Jobs) -> None:
    assert jobs.run("logs", jobs.talker, "--tail", "1").stdout == "two\n"
    assert jobs.run("logs", jobs.talker).stdout == "one\ntwo\n"
    assert jobs.run("logs", jobs.talker, "--stderr").stdout == "oops\n"


def test_logs_json_and_follow_is_a_usage_error(jobs: Jobs) -> None:
    line = assert_one_line_usage_error(jobs.run("logs", jobs.talker, "--json", "--follow"))
    assert "leave out --follow" in line


def test_logs_json_of_an_array_job_names_its_tasks(jobs: Jobs) -> None:
    result = jobs.run("logs", jobs.sweep, "--json")
    assert result.returncode == 3
    assert "its tasks have logs" in result.stderr


# -- exit code 127 ------------------------------------------------------------------------


def test_status_says_which_command_was_not_found(jobs: Jobs) -> None:
    text = jobs.run("status", jobs.not_found).stdout
    assert "command not found: nosuchcmd-xyz (exit code 127)" in text, text
    assert "add app_error to retry.retry_on" not in text
    listed = jobs.run("list").stdout
    assert "command not found (exit code 127)" in listed
    # JSON keeps the record as stored.
    job = as_json(jobs.run("status", jobs.not_found, "--json"))["job"]
    assert (job["exit_code"], job["failure_class"]) == (127, "app_error")


def test_why_says_which_command_was_not_found(jobs: Jobs) -> None:
    text = jobs.run("why", jobs.not_found).stdout
    assert "'nosuchcmd-xyz'" in text and "not found" in text, text
    assert "add app_error to retry.retry_on" not in text
    why = as_json(jobs.run("why", jobs.not_found, "--json"))
    assert why["exit"] == "command not found: nosuchcmd-xyz (exit code 127)"
    assert "nosuchcmd-xyz" in why["summary"]
    assert why["next_step"].startswith("Install nosuchcmd-xyz")
    assert all("add app_error" not in action for action in why["actions"])


# -- reasons: rounded durations ----------------------------------------------------------


def test_reasons_show_rounded_durations(jobs: Jobs) -> None:
    stored = as_json(jobs.run("status", jobs.retrying, "--json"))["job"]["reason"]
    assert not RAW_FLOAT_SECONDS.search(stored), stored  # the reconciler writes it readable
    shown = round_durations(stored)  # and reasons stored by older versions read the same
    # The jittered delay is about 10 minutes; a whole number of minutes shows without "0s".
    assert re.search(r"in \d+m(\d+s)?$", shown), shown
    for command in (("list",), ("status", jobs.retrying), ("events", jobs.retrying)):
        text = jobs.run(*command).stdout
        assert shown in text, (command, text)
        assert not RAW_FLOAT_SECONDS.search(text), (command, text)
    why = jobs.run("why", jobs.retrying).stdout
    assert not RAW_FLOAT_SECONDS.search(why), why


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("retrying after app_error in 546.5245235578141s", "retrying after app_error in 9m7s"),
        ("not known for 10.212392043362895s; lost", "not known for 10s; lost"),
        ("in 2.46s", "in 2.5s"),
        ("in 3599.6s", "in 1h"),
        ("in 90061.2s", "in 1d1h1m1s"),
        ("in 90s and 1h30m", "in 90s and 1h30m"),
        ("version 1.25s3", "version 1.25s3"),
    ],
)
def test_round_durations(raw: str, shown: str) -> None:
    assert round_durations(raw) == shown


@pytest.mark.parametrize(
    ("stderr", "command"),
    [
        (["sh: 1: nosuch: not found"], "nosuch"),
        (["hpcbridge-shim: 1: exec: nosuch: not found"], "nosuch"),
        (["bash: line 1: nosuch: command not found"], "nosuch"),
        (["zsh: command not found: nosuch"], "nosuch"),
        (["env: \u2018nosuch\u2019: No such file or directory"], "nosuch"),
        (["slurmstepd: error: execve(): nosuch: No such file or directory"], "nosuch"),
        (["sh: 1: first: not found", "later output"], "first"),
        (["all went fine"], None),
        ([], None),
    ],
)
def test_missing_command_from_stderr(stderr: list[str], command: str | None) -> None:
    assert missing_command(stderr) == command


def test_history_reason_says_command_not_found() -> None:
    raw = (
        "gave up (attempt 1): the job exited with code 127; app_error is not retried by "
        "default: the program itself failed (add app_error to retry.retry_on)"
    )
    shown = history_reason(raw, "foo")
    assert shown.startswith("gave up (attempt 1): command not found: foo (exit code 127); ")
    assert "retry.retry_on" not in shown
    assert history_reason("the job exited with code 1270") == "the job exited with code 1270"
