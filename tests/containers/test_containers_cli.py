"""Container jobs through the installed ``hpcbridge`` command: provenance names the image
digest, ``rerun`` runs the same digest and reproduces the output byte for byte, and a
missing runtime or image is refused before anything is stored."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from hpcbridge.containers._digest import podman_image_id
from tests.cli.conftest import (
    RunHpcbridge,
    assert_one_line_usage_error,
    cli_env,
    hpcbridge,
)
from tests.containers.conftest import (
    Images,
    make_rootfs,
    make_tarball,
    podman_import,
    podman_rmi,
)

__all__ = ["cli_env", "hpcbridge"]  # fixtures shared with the CLI suite

# Deterministic: digests of the image's own files, nothing of time or place.
COMMAND = ["sh", "-c", "sha256sum /bin/busybox /etc/hb-image | tr a-f A-F"]


def _job_file(tmp_path: Path, image: str, name: str = "job.yaml") -> Path:
    document = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "boxed",
        "command": COMMAND,
        "container": {"image": image, "env_passthrough": ["LANG"]},
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def test_provenance_names_the_digest_and_rerun_reproduces_the_output(
    images: Images, hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    tarball = make_tarball(make_rootfs(tmp_path / "root", "hb-test-image one"), tmp_path / "a.tar")
    tag = podman_import(tarball, images.podman.replace(":1", ":rerun"))
    digest = podman_image_id(tag)
    try:
        _ok(hpcbridge("run", str(_job_file(tmp_path, tag))))
        job_id = json.loads(_ok(hpcbridge("list", "--json")))[0]["job_id"]
        doc = json.loads(_ok(hpcbridge("provenance", job_id, "--json")))
        assert doc["container"] == {"image": tag, "digest": digest}
        assert f"container: {tag} {digest}" in _ok(hpcbridge("provenance", job_id))
        prov = json.loads(_ok(hpcbridge("provenance", job_id, "--format", "prov-json")))
        (activity,) = prov["activity"].values()
        assert activity["hb:container_digest"] == digest

        rerun_id = _ok(hpcbridge("rerun", job_id)).strip()
        _ok(hpcbridge("wait", rerun_id, timeout=120))
        rerun = json.loads(_ok(hpcbridge("provenance", rerun_id, "--json")))
        assert rerun["container"]["digest"] == digest
        first, again = (_ok(hpcbridge("logs", job)) for job in (job_id, rerun_id))
        assert first == again and "/EtC/hB-imAgE" in first  # byte for byte, from the image

        other = make_tarball(make_rootfs(tmp_path / "two", "two"), tmp_path / "b.tar")
        podman_import(other, tag)  # the tag moves: a rerun cannot get the same image
        line = assert_one_line_usage_error(hpcbridge("rerun", job_id))
        assert f"the spec pins {digest}" in line
    finally:
        for image in (tag, (digest or "").removeprefix("sha256:")):  # and the tag's old one
            if image:
                podman_rmi(image)


def test_a_missing_image_or_runtime_is_refused_before_anything_is_stored(
    images: Images, hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    absent = _job_file(tmp_path, "localhost/hpcb-absent:1")
    for command in ("validate", "submit"):
        line = assert_one_line_usage_error(hpcbridge(command, str(absent)))
        assert "Podman has no image 'localhost/hpcb-absent:1'; load it first" in line, line
    gone = _job_file(tmp_path, "./no-such-image", "gone.yaml")
    line = assert_one_line_usage_error(hpcbridge("submit", str(gone)))
    assert f"{tmp_path / 'no-such-image'} does not exist" in line
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for image, runtime in ((images.podman, "podman"), (str(images.directory), "ch-run")):
        spec = _job_file(tmp_path, image, f"{runtime}.yaml")
        line = assert_one_line_usage_error(hpcbridge("submit", str(spec), env={"PATH": str(empty)}))
        assert f"container: {runtime} is not installed; install" in line
    assert json.loads(_ok(hpcbridge("list", "--json"))) == []
