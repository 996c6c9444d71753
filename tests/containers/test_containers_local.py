"""Container jobs on the local executor: each kind of image, the pinned digest, a changed
image caught before the command runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.containers._digest import file_digest, podman_image_id, tree_digest
from hpcbridge.spec import JobSpec
from hpcbridge.states import FailureClass, JobState
from tests.containers.conftest import (
    Images,
    make_rootfs,
    make_tarball,
    podman_import,
    podman_rmi,
)

MARKER_COMMAND = ["sh", "-c", "cat /etc/hb-image; echo in-image > made.txt; cat made.txt"]


def _image(images: Images, kind: str) -> tuple[str, str]:
    """The spec's image reference and the digest it must be pinned to."""
    if kind == "podman":
        digest = podman_image_id(images.podman)
        assert digest is not None
        return images.podman, digest
    if kind == "directory":
        return str(images.directory), tree_digest(images.directory)
    return str(images.tarball), file_digest(images.tarball)


def _stdout(client: Client, job_id: str) -> str:
    out, _ = client.log_paths(job_id)
    assert out is not None
    return out.read_text()


@pytest.mark.parametrize("kind", ["podman", "directory", "tarball"])
def test_a_container_job_runs_in_its_image_pinned_by_digest(
    images: Images, kind: str, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    reference, digest = _image(images, kind)
    client = Client(settings)
    try:
        job = client.submit(make_spec(command=MARKER_COMMAND, container={"image": reference}))
        assert job.spec["container"]["digest"] == digest  # stored on the job at submit
        (done,) = client.wait([job.job_id], timeout_s=120)
        assert done.state is JobState.SUCCEEDED, done.reason
        # the marker exists only in the image; the file it wrote is in the job's directory
        assert _stdout(client, job.job_id) == "hb-test-image one\nin-image\n"
        assert client.provenance(job.job_id)["container"]["digest"] == digest
    finally:
        client.close()


def test_a_retagged_podman_image_fails_the_attempt_before_the_command_runs(
    images: Images, tmp_path: Path, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    tarball = make_tarball(make_rootfs(tmp_path / "root", "hb-test-image one"), tmp_path / "a.tar")
    tag = podman_import(tarball, images.podman.replace(":1", ":retag"))
    client = Client(settings)
    pinned = ""
    try:
        ran = tmp_path / "ran"
        job = client.submit(make_spec(command=["touch", str(ran)], container={"image": tag}))
        pinned = job.spec["container"]["digest"]
        other = make_tarball(make_rootfs(tmp_path / "two", "two"), tmp_path / "b.tar")
        podman_import(other, tag)  # the same tag now names another image
        (done,) = client.wait([job.job_id], timeout_s=120)
        assert done.state is JobState.FAILED
        assert done.failure_class is FailureClass.SPEC_ERROR, done.reason
        assert "changed since submission" in (done.reason or "")
        assert pinned in (done.reason or "") and not ran.exists()
    finally:
        client.close()
        for image in (tag, pinned.removeprefix("sha256:")):  # the one the tag moved off too
            if image:
                podman_rmi(image)


def test_a_changed_directory_image_fails_the_attempt(
    images: Images, tmp_path: Path, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    root = make_rootfs(tmp_path / "root", "hb-test-image one")
    client = Client(settings)
    try:
        job = client.submit(make_spec(command=MARKER_COMMAND, container={"image": str(root)}))
        (root / "etc" / "hb-image").write_text("changed\n")
        (done,) = client.wait([job.job_id], timeout_s=120)
        assert done.failure_class is FailureClass.SPEC_ERROR, done.reason
        assert f"container image {root} changed since submission" in (done.reason or "")
        assert "changed" not in _stdout(client, job.job_id)
    finally:
        client.close()


def test_a_retried_submission_with_its_key_gets_the_same_pinned_job(
    images: Images, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    spec = make_spec(command=MARKER_COMMAND, container={"image": str(images.directory)})
    client = Client(settings)
    try:  # the stored spec carries the digest, the retried one does not: still the same
        first = client.submit(spec, idempotency_key="boxed-1")
        again = client.submit(spec, idempotency_key="boxed-1")
        assert again.job_id == first.job_id and first.spec["container"]["digest"]
    finally:
        client.close()
