"""Hostile specs (YAML alias bombs, deep nesting, cycles, huge values) are refused fast and
small with a SpecError that says what is wrong, and the CLI shows it as one line, exit 2.

The cost of each refusal is measured in a child process (tests/cli/_measure_load.py) by
getrusage: CPU time and peak memory of the load alone, with its address space capped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hpcbridge.spec import load_spec_text
from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error

HEADER = "apiVersion: hpcbridge/v1\nkind: Job\nname: t\n"


def laughs(levels: int = 9) -> str:
    """Anchors a0..a8, each nine aliases of the one before: a8 expands to 9^9 values."""
    lines = ["x-laughs:", '  - &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


TOP = "*a8"
HOSTILE = {
    "alias bomb in tags": (laughs() + HEADER + f"command: ['true']\ntags: {{t: {TOP}}}\n"),
    "alias bomb in command": laughs() + HEADER + f"command: {TOP}\n",
    "alias bomb in env": laughs() + HEADER + f"command: ['true']\nenv: {{A: {TOP}}}\n",
    "alias bomb in array.params": (
        laughs() + HEADER + f"command: ['true']\narray: {{params: {{x: {TOP}}}}}\n"
    ),
    "nesting 500 deep": HEADER + "command: " + "[" * 500 + "]" * 500 + "\n",
    "nesting in a block mapping": HEADER
    + "command: ['true']\nenv:\n"
    + "".join("  " * i + f"k{i}:\n" for i in range(1, 200))
    + "  " * 200
    + "v: x\n",
    "nesting 500 deep in JSON": '{"command": ' + "[" * 500 + "]" * 500 + "}",
    "nesting 100000 deep in JSON": '{"command": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nesting built from aliases": (
        "x: [&d0 " + "[" * 40 + "1" + "]" * 40 + ", &d1 " + "[" * 40 + "*d0" + "]" * 40 + "]\n"
    )
    + HEADER
    + "command: ['true']\n",
    "an alias inside itself": HEADER + "command: &c ['true', *c]\n",
}
EXPECTED = {
    "alias bomb": "more than 250000 values once YAML aliases are expanded",
    "nesting": "nested more than 50 levels deep",
    "an alias inside itself": "a YAML alias refers to the value that contains it",
}


def _expected(case: str) -> str:
    return next(text for prefix, text in EXPECTED.items() if case.startswith(prefix))


def _measure(path: Path) -> dict[str, object]:
    child = Path(__file__).with_name("_measure_load.py")
    result = subprocess.run(
        [sys.executable, str(child), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    measured: dict[str, object] = json.loads(result.stdout)
    return measured


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_spec_is_refused_fast_and_small(case: str, tmp_path: Path) -> None:
    suffix = ".json" if "JSON" in case else ".yaml"
    path = tmp_path / f"spec{suffix}"
    path.write_text(HOSTILE[case])
    measured = _measure(path)
    outcome = str(measured["outcome"])
    assert outcome.startswith("SpecError: "), outcome
    assert _expected(case) in outcome, outcome
    assert len(outcome) < 300, outcome
    assert float(str(measured["cpu_s"])) < 1.0, measured
    assert float(str(measured["growth_mb"])) < 100, measured


@pytest.mark.parametrize("case", ["alias bomb in tags", "nesting 500 deep"])
def test_cli_shows_the_refusal_as_one_line(
    case: str, hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(HOSTILE[case])
    for command in ("validate", "run", "submit"):
        line = assert_one_line_usage_error(hpcbridge(command, str(path)))
        assert _expected(case) in line, line


def test_a_huge_value_is_shortened_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        HEADER
        + "command: ['true']\n"
        + f"resources: {{walltime: {'x' * 500_000}}}\n"
        + f"tags: {{t: [{'y' * 300_000}]}}\n"
    )
    outcome = str(_measure(path)["outcome"])
    assert outcome.startswith("SpecError: "), outcome[:200]
    assert "resources.walltime: " in outcome and "tags.t: " in outcome, outcome[:600]
    assert len(outcome) < 1500, len(outcome)


def test_aliases_that_expand_a_little_still_load() -> None:
    spec = load_spec_text(
        HEADER
        + "tags: &tags {team: ml, OMP_NUM_THREADS: '4'}\n"
        + "env: {<<: *tags, B: '2'}\n"
        + "command: &cmd [python, train.py]\n"
        + "array: {params: {seed: &seeds [1, 2, 3], again: *seeds}}\n"
    )
    assert spec.env == {"team": "ml", "OMP_NUM_THREADS": "4", "B": "2"}
    assert spec.command == ("python", "train.py")
