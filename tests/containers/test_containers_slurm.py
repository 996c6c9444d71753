"""Container jobs on the real Slurm test cluster (nodes n1-n3 share this machine, jobs run
as root): the batch script's wrapper checks the pinned digest on the node and runs the
command with Podman or ch-run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.containers._digest import podman_image_id
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass, JobState
from tests.containers.conftest import (
    Images,
    make_rootfs,
    make_tarball,
    podman_import,
    podman_rmi,
)
from tests.staging.test_stage_slurm import slurm_settings

__all__ = ["slurm_settings"]  # the cluster fixture of the staging suite
pytestmark = pytest.mark.slurm

COMMAND = ["sh", "-c", "cat /etc/hb-image; echo in-image > made.txt; cat made.txt"]


def _stdout(client: Client, job_id: str) -> str:
    out, _ = client.log_paths(job_id)
    assert out is not None
    return out.read_text()


def test_container_jobs_run_on_slurm_and_a_retag_is_caught_on_the_node(
    images: Images,
    slurm_settings: Settings,
    tmp_path: Path,
    make_spec: Callable[..., JobSpec],
) -> None:
    tarball = make_tarball(make_rootfs(tmp_path / "root", "hb-test-image one"), tmp_path / "a.tar")
    tag = podman_import(tarball, images.podman.replace(":1", ":slurm"))
    client = Client(slurm_settings)
    first = podman_image_id(tag) or ""
    try:
        jobs = [
            # Slurm runs a job in the directory it was submitted from: here, not the checkout.
            client.submit(
                make_spec(
                    backend="slurm",
                    command=COMMAND,
                    container={"image": image},
                    submit_dir=str(tmp_path),
                )
            )
            for image in (tag, str(images.directory))
        ]
        for job in client.wait([job.job_id for job in jobs], timeout_s=180):
            assert job.state is JobState.SUCCEEDED, job.reason
            assert _stdout(client, job.job_id) == "hb-test-image one\nin-image\n"
            assert client.attempts(job.job_id)[0].native_id  # it went through sbatch
            pinned = client.provenance(job.job_id)["container"]["digest"]
            assert pinned == job.spec["container"]["digest"]

        ran = tmp_path / "ran"
        moved = client.submit(
            make_spec(backend="slurm", command=["touch", str(ran)], container={"image": tag})
        )
        other = make_tarball(make_rootfs(tmp_path / "two", "two"), tmp_path / "b.tar")
        podman_import(other, tag)  # before the attempt starts, the tag moves
        (failed,) = client.wait([moved.job_id], timeout_s=180)
        assert failed.failure_class is FailureClass.SPEC_ERROR, failed.reason
        assert "changed since submission" in (failed.reason or "") and not ran.exists()
    finally:
        client.close()
        for image in (tag, first.removeprefix("sha256:")):  # and the image the tag moved off
            if image:
                podman_rmi(image)
