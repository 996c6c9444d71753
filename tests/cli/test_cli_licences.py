"""Managed licence pools at the command line: impossible requests and bad pool files are
refused with one line and exit 2, before anything is stored."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error

POOLS = """\
pools:
  - name: fluent
    total: 4
    servers:
      - {name: lic1, check: ["true"]}
"""
SPEC = """\
apiVersion: hpcbridge/v1
kind: Job
name: solve
command: ["true"]
licences: {fluent: 5}
"""


def test_a_request_over_the_pool_total_is_refused_at_submit(
    hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    (tmp_path / "pools.yaml").write_text(POOLS)
    (tmp_path / "job.yaml").write_text(SPEC)
    env = {"HPCBRIDGE_LICENCE_POOLS_FILE": str(tmp_path / "pools.yaml")}
    line = assert_one_line_usage_error(hpcbridge("submit", "job.yaml", env=env))
    assert "licences.fluent: asks for 5 but the pool fluent holds 4" in line
    listed = hpcbridge("list", env=env)
    assert listed.returncode == 0 and "solve" not in listed.stdout


def test_a_bad_pools_file_is_one_line_and_exit_2(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    (tmp_path / "pools.yaml").write_text("pools:\n  - name: fluent\n    servers: []\n")
    (tmp_path / "job.yaml").write_text(SPEC)
    env = {"HPCBRIDGE_LICENCE_POOLS_FILE": str(tmp_path / "pools.yaml")}
    line = assert_one_line_usage_error(hpcbridge("submit", "job.yaml", env=env))
    assert "licence pools" in line and "pools.yaml" in line
