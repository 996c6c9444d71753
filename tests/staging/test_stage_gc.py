"""``gc`` removes a finished job's data directory with its other files, never a recent one's."""

from __future__ import annotations

from hpcbridge.retention import plan_gc
from tests.cli.test_cli_gc import NOW, RETENTION_S, Site, site

__all__ = ["site"]  # the retention suite's site fixture


def test_a_finished_jobs_data_directory_goes_with_it(site: Site) -> None:
    for job_id in ("old", "recent", "running"):
        (site.home / "data" / job_id / "in").mkdir(parents=True)
        (site.home / "data" / job_id / "in" / "x.bin").write_bytes(b"x" * 2000)
    plan = plan_gc(
        site.store,
        site.backends,
        home=site.home,
        runs_dir=site.runs,
        older_than_s=RETENTION_S,
        now=NOW,
    )
    data = [r.path.name for r in plan.removals if r.path.parent == site.home / "data"]
    assert data == ["old"]
