"""The quotas file: each listed project's own limits over the site-wide settings; a bad file
is refused naming the file, the key and the fix (exit 2 through the installed CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcbridge.errors import ConfigError
from hpcbridge.policy import Quotas, load_quotas

SITE = Quotas(running_jobs=10, submissions_per_minute=60, core_hours_per_day=1000.0)
HPCBRIDGE = Path(sys.executable).with_name("hpcbridge")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "quotas.yaml"
    path.write_text(text)
    return path


def test_a_missing_file_leaves_the_site_wide_quotas_for_every_project(tmp_path: Path) -> None:
    table = load_quotas(tmp_path / "absent.yaml", SITE)
    assert table.of("anything") == SITE
    assert table.running_jobs("anything") == 10


def test_a_project_overrides_what_it_names_keeps_the_rest_and_null_lifts_a_limit(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "projects:\n"
        "  physics: {running_jobs: 200, core_hours_per_day: 50000}\n"
        "  students: {running_jobs: 2}\n"
        "  ops: {submissions_per_minute: null}\n",
    )
    table = load_quotas(path, SITE)
    assert table.of("physics") == Quotas(200, 60, 50000.0)
    assert table.of("students") == Quotas(2, 60, 1000.0)
    assert table.of("ops") == Quotas(10, None, 1000.0)
    assert table.of("chemistry") == SITE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("projects: [", "cannot read it as YAML"),
        ("projects:\n  physics: {running: 3}\n", "projects.physics.running: Extra inputs"),
        ("projects:\n  physics: {running_jobs: 0}\n", "projects.physics.running_jobs"),
        ("projects:\n  physics: {core_hours_per_day: lots}\n", "core_hours_per_day"),
        ("projects:\n  'bad name!': {running_jobs: 1}\n", "not a valid name"),
        ("quota: {}\n", "quota: Extra inputs"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_quotas(path, SITE)
    message = str(refused.value)
    assert message.startswith(f"quotas file {path}: ")
    assert expected in message


def test_the_installed_cli_refuses_a_bad_quotas_file_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "projects:\n  physics: {runing_jobs: 3}\n")
    env = {
        **os.environ,
        "HPCBRIDGE_HOME": str(tmp_path / "home"),
        "HPCBRIDGE_QUOTAS_FILE": str(path),
    }
    done = subprocess.run(
        [str(HPCBRIDGE), "list"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert str(path) in done.stderr and "runing_jobs" in done.stderr
    assert "running_jobs" in done.stderr  # the fix: the keys it takes
