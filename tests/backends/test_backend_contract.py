"""The backend contract: what every backend does, run against each harness in ``HARNESSES``.

Each test starts real jobs through the harness (see ``_harness.py`` for its interface) and
reads what they saw from the harness's shared directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.backends._harness import HARNESSES, BackendHarness, open_harness, wait_for

from hpcbridge.backends import AttemptRef, Phase
from hpcbridge.states import FailureClass

SLEEP = "import time; time.sleep(60)"


@pytest.fixture(params=sorted(HARNESSES))
def backend_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendHarness]:
    with open_harness(request.param, tmp_path) as harness:
        yield harness


def python_job(h: BackendHarness, program: str, *args: str) -> AttemptRef:
    return h.launch(h.spec(command=[h.python, "-c", program, *args]))


def test_a_job_that_succeeds(backend_harness: BackendHarness) -> None:
    h = backend_harness
    ref = python_job(
        h, "import sys; print('hello from the job'); print('to stderr', file=sys.stderr)"
    )
    seen = h.wait(ref)
    assert seen.phase is Phase.SUCCEEDED, seen
    assert (seen.exit_code, seen.failure_class) == (0, None)
    assert seen.nodes
    stdout, stderr = h.backend.log_paths(ref)
    assert stdout is not None
    assert stderr is not None
    assert "hello from the job" in stdout.read_text()
    assert "to stderr" in stderr.read_text()


def test_a_job_that_exits_3(backend_harness: BackendHarness) -> None:
    h = backend_harness
    seen = h.wait(python_job(h, "raise SystemExit(3)"))
    assert seen.phase is Phase.FAILED
    assert (seen.failure_class, seen.exit_code) == (FailureClass.APP_ERROR, 3)
    assert seen.reason is not None
    assert "3" in seen.reason


def test_the_same_answer_on_every_poll_once_finished(backend_harness: BackendHarness) -> None:
    h = backend_harness
    ref = python_job(h, "raise SystemExit(3)")
    first = h.wait(ref)
    again = h.observe(ref)
    assert (again.phase, again.failure_class, again.exit_code) == (
        first.phase,
        first.failure_class,
        first.exit_code,
    )


@pytest.mark.parametrize(
    "failure_class", [FailureClass.TIMEOUT, FailureClass.CANCELLED, FailureClass.OOM]
)
def test_kill_classifies_the_failure(
    backend_harness: BackendHarness, failure_class: FailureClass
) -> None:
    h = backend_harness
    ref = python_job(h, SLEEP)
    h.wait(ref, until={Phase.RUNNING})
    h.backend.kill(ref, failure_class, time.time())
    seen = h.wait(ref, timeout_s=10)
    assert seen.phase is Phase.FAILED
    assert seen.failure_class is failure_class


def test_kill_is_idempotent(backend_harness: BackendHarness) -> None:
    h = backend_harness
    ref = python_job(h, SLEEP)
    h.wait(ref, until={Phase.RUNNING})
    h.backend.kill(ref, FailureClass.CANCELLED, time.time())
    h.backend.kill(ref, FailureClass.TIMEOUT, time.time())  # the first reason stands
    seen = h.wait(ref, timeout_s=10)
    assert seen.failure_class is FailureClass.CANCELLED
    h.backend.kill(ref, FailureClass.CANCELLED, time.time())  # after the end: harmless
    assert h.observe(ref).failure_class is FailureClass.CANCELLED


def test_environment_reaches_the_job(backend_harness: BackendHarness) -> None:
    h = backend_harness
    out = h.shared_dir / "env.json"
    program = (
        "import json, os, sys; json.dump({k: os.environ.get(k) for k in sys.argv[2:]}, "
        "open(sys.argv[1], 'w'))"
    )
    names = ["HPCBRIDGE_JOB_ID", "HPCBRIDGE_ATTEMPT", "SPEC_VAR", "TRICKY"]
    spec = h.spec(
        command=[h.python, "-c", program, str(out), *names],
        env={"SPEC_VAR": "from the spec", "TRICKY": "$HOME `id` ;|& 'q' \"dq\""},
    )
    ref = h.launch(spec, env={"HPCBRIDGE_JOB_ID": "job-42", "HPCBRIDGE_ATTEMPT": "7"})
    assert h.wait(ref).phase is Phase.SUCCEEDED
    assert json.loads(out.read_text()) == {
        "HPCBRIDGE_JOB_ID": "job-42",
        "HPCBRIDGE_ATTEMPT": "7",
        "SPEC_VAR": "from the spec",
        "TRICKY": "$HOME `id` ;|& 'q' \"dq\"",
    }


HOSTILE_ARGS = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "${HOME}",
    "'single' \"double\"",
    "line\nbreak",
    "*",
    "~",
    "",
    "  padded  ",
    "--flag=value with spaces",
    "|& > /dev/null <",
    "ünïcödé ✓",
    "\\backslash\\",
]


def test_argv_reaches_the_program_verbatim(backend_harness: BackendHarness) -> None:
    h = backend_harness
    out = h.shared_dir / "argv.json"
    program = "import json, sys; json.dump(sys.argv[2:], open(sys.argv[1], 'w'))"
    ref = python_job(h, program, str(out), *HOSTILE_ARGS)
    assert h.wait(ref).phase is Phase.SUCCEEDED
    assert json.loads(out.read_text()) == HOSTILE_ARGS


@pytest.mark.parametrize("shebang", ["#!/bin/sh\n", ""])
def test_script_mode(backend_harness: BackendHarness, shebang: str) -> None:
    h = backend_harness
    out = h.shared_dir / "script.txt"
    script = f'{shebang}set -e\necho "from the script $MARK" > "{out}"\nexit 0\n'
    ref = h.launch(h.spec(command=None, script=script, env={"MARK": "ok"}))
    assert h.wait(ref).phase is Phase.SUCCEEDED
    assert out.read_text() == "from the script ok\n"


def test_script_failure_is_an_app_error(backend_harness: BackendHarness) -> None:
    h = backend_harness
    ref = h.launch(h.spec(command=None, script="#!/bin/sh\nexit 5\n"))
    seen = h.wait(ref)
    assert (seen.phase, seen.failure_class, seen.exit_code) == (
        Phase.FAILED,
        FailureClass.APP_ERROR,
        5,
    )


def test_polling_at_once_never_starts_a_job_twice(backend_harness: BackendHarness) -> None:
    """Poll right after submit, before the job can report itself: each must run once."""
    h = backend_harness
    out = h.shared_dir / "runs.txt"
    program = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    for i in range(12):
        ref = python_job(h, program, str(out), str(i))
        for _ in range(3):
            h.observe(ref)
        assert h.wait(ref).phase is Phase.SUCCEEDED
    assert sorted(out.read_text().split(), key=int) == [str(i) for i in range(12)]


def test_poll_answers_for_every_ref_in_one_call(backend_harness: BackendHarness) -> None:
    h = backend_harness
    refs = [python_job(h, "pass") for _ in range(3)]
    for ref in refs:
        h.wait(ref)
    observations = h.backend.poll(refs, time.time())
    assert set(observations) == {ref.token for ref in refs}
    assert {seen.phase for seen in observations.values()} == {Phase.SUCCEEDED}


def test_find_adopts_a_running_attempt_after_a_restart(backend_harness: BackendHarness) -> None:
    h = backend_harness
    marker = h.shared_dir / "started"
    program = f"import time; open({str(marker)!r}, 'w').write('x'); time.sleep(60)"
    ref = python_job(h, program)
    h.wait(ref, until={Phase.RUNNING})
    wait_for(marker.exists, 10, "the job to start")
    backend = h.restart()
    found = backend.find(AttemptRef(ref.job_id, ref.attempt, ref.token, None, ref.details))
    assert found is not None
    adopted = AttemptRef(
        ref.job_id, ref.attempt, ref.token, found.native_id, {**ref.details, **found.details}
    )
    assert h.observe(adopted).phase is Phase.RUNNING
    backend.kill(adopted, FailureClass.CANCELLED, time.time())
    seen = h.wait(adopted, timeout_s=10)
    assert (seen.phase, seen.failure_class) == (Phase.FAILED, FailureClass.CANCELLED)


def test_find_adopts_a_finished_attempt_after_a_restart(backend_harness: BackendHarness) -> None:
    h = backend_harness
    ref = python_job(h, "raise SystemExit(4)")
    h.wait(ref)
    backend = h.restart()
    found = backend.find(AttemptRef(ref.job_id, ref.attempt, ref.token, None, ref.details))
    assert found is not None
    adopted = AttemptRef(
        ref.job_id, ref.attempt, ref.token, found.native_id, {**ref.details, **found.details}
    )
    seen = h.observe(adopted)
    assert (seen.phase, seen.exit_code) == (Phase.FAILED, 4)


def test_find_knows_nothing_of_an_attempt_never_submitted(
    backend_harness: BackendHarness,
) -> None:
    h = backend_harness
    python_job(h, "pass")  # something else exists
    ghost = AttemptRef(job_id="jc-ghost", attempt=1, token="never-submitted", native_id=None)
    assert h.backend.find(ghost) is None


def test_a_job_killed_from_outside_is_lost(backend_harness: BackendHarness) -> None:
    h = backend_harness
    marker = h.shared_dir / "started"
    program = f"import time; open({str(marker)!r}, 'w').write('x'); time.sleep(60)"
    ref = python_job(h, program)
    h.wait(ref, until={Phase.RUNNING})
    wait_for(marker.exists, 10, "the job to start")
    h.kill_outside(ref)
    seen = h.wait(ref, timeout_s=10)
    assert (seen.phase, seen.failure_class) == (Phase.FAILED, FailureClass.LOST)
    assert seen.reason
