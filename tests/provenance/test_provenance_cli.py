"""Provenance and rerun through the installed ``hpcbridge`` command, on the local executor."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import (
    RunHpcbridge,
    assert_one_line_usage_error,
    cli_env,
    hpcbridge,
)

__all__ = ["cli_env", "hpcbridge"]  # fixtures shared with the CLI suite


def _job_file(tmp_path: Path, source: Path, results: Path, **extra: object) -> Path:
    document = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "prov",
        "command": ["sh", "-c", "mkdir -p out && tr a-z A-Z < data.txt > out/upper.txt"],
        "env": {"MODE": "fast", "API_TOKEN": "s3cr3t"},
        "stage_in": [{"source": str(source), "dest": "data.txt"}],
        "stage_out": [{"source": "out", "dest": str(results)}],
        **extra,
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def test_provenance_exports_and_rerun(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    source = tmp_path / "data.txt"
    source.write_text("hello\n")
    results = tmp_path / "results"
    job_file = _job_file(tmp_path, source, results)
    assert "inputs: 1 files, 0.0 MiB" in _ok(hpcbridge("validate", str(job_file)))
    _ok(hpcbridge("run", str(job_file), "--json"))
    job_id = json.loads(_ok(hpcbridge("list", "--json")))[0]["job_id"]
    assert (results / "upper.txt").read_text() == "HELLO\n"

    doc = json.loads(_ok(hpcbridge("provenance", job_id, "--json")))
    (staged,) = doc["inputs"]
    assert staged["source"] == str(source) and staged["size"] == 6
    assert staged["digest"].split(":")[0] in ("blake3", "sha256")
    assert [Path(o["path"]).name for o in doc["outputs"]] == ["upper.txt"]
    assert doc["environment"] == {"MODE": "fast", "API_TOKEN": "<redacted>"}
    assert doc["origin"]["hpcbridge_version"]
    assert doc["attempts"][0]["exit_code"] == 0 and doc["attempts"][0]["nodes"]
    text = _ok(hpcbridge("provenance", job_id))
    assert staged["digest"] in text and "s3cr3t" not in text

    prov = json.loads(_ok(hpcbridge("provenance", job_id, "--format", "prov-json")))
    assert len(prov["used"]) == 1 and len(prov["wasGeneratedBy"]) == 1

    rocrate = pytest.importorskip("rocrate.rocrate")
    crate_dir = tmp_path / "crate"
    _ok(hpcbridge("provenance", job_id, "--format", "ro-crate", "-o", str(crate_dir)))
    crate = rocrate.ROCrate(crate_dir)  # the maintained library reads it back
    ids = {entity.id for entity in crate.get_entities()}
    assert any(i.endswith("data.txt") for i in ids) and f"#job-{job_id}" in ids

    rerun_id = _ok(hpcbridge("rerun", job_id)).strip()
    hpcbridge("wait", rerun_id, timeout=60)
    source.write_text("HACKED\n")  # same size, other bytes: the rerun must notice
    second = _ok(hpcbridge("rerun", job_id)).strip()
    hpcbridge("wait", second, timeout=60)
    first, changed = (
        json.loads(_ok(hpcbridge("status", job, "--json")))["job"] for job in (rerun_id, second)
    )
    assert first["state"] == "succeeded"
    assert (changed["state"], changed["failure_class"]) == ("failed", "checksum_mismatch")


def test_a_missing_input_is_refused_before_anything_is_stored(
    hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    job_file = _job_file(tmp_path, tmp_path / "absent.txt", tmp_path / "r")
    for command in ("validate", "submit"):
        line = assert_one_line_usage_error(hpcbridge(command, str(job_file)))
        assert "absent.txt does not exist" in line
    assert json.loads(_ok(hpcbridge("list", "--json"))) == []
