"""A misspelt spec field: the error names the field it most likely meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.errors import SpecError
from hpcbridge.spec import load_spec_document
from tests.cli.conftest import RunHpcbridge

SPEC = "apiVersion: hpcbridge/v1\nkind: Job\nname: t\ncommand: [echo, hi]\n"


def _problem(**fields: object) -> str:
    document = {"apiVersion": "hpcbridge/v1", "kind": "Job", "name": "t", "command": ["echo"]}
    with pytest.raises(SpecError) as caught:
        load_spec_document(document | fields)
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


@pytest.mark.parametrize(
    ("fields", "meant"),
    [
        ({"nmae": "x"}, "name"),
        ({"resoures": {"mem": "1G"}}, "resources"),
        ({"Command": ["echo"]}, "command"),
        ({"environment": {}}, "env"),
        ({"resources": {"cpus": 2}}, "cpus_per_task"),
        ({"resources": {"wall_time": "1h"}}, "walltime"),
        ({"retry": {"backoff": {"maximum": "1h"}}}, "max"),
    ],
)
def test_unknown_field_suggests_the_closest_valid_one(
    fields: dict[str, object], meant: str
) -> None:
    problem = _problem(**fields)
    assert f"(did you mean {meant!r}?)" in problem
    assert "valid fields here are:" in problem


def test_nothing_close_suggests_nothing() -> None:
    problem = _problem(zzzz=1)
    assert "did you mean" not in problem
    assert problem.startswith("zzzz: unknown field; valid fields here are: ")


def test_validate_names_the_field_meant(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(SPEC + "resoures: {mem: 1G}\n")
    result = hpcbridge("validate", str(spec))
    assert result.returncode == 2, result.stderr
    assert "resoures: unknown field (did you mean 'resources'?)" in result.stderr
    assert "Traceback" not in result.stderr
