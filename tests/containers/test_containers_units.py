"""Fast checks without a runtime: the spec block, content digests, the launcher's argv."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from hpcbridge.containers import environment_change, launch_config, wrap_argv
from hpcbridge.containers._digest import tree_digest
from hpcbridge.containers.launch import ImageChangedError, argv_for, ch_run_argv
from hpcbridge.errors import SpecError
from hpcbridge.spec import load_spec_text

README = Path(__file__).resolve().parents[2] / "README.md"


def _spec(container: str) -> str:
    return f"apiVersion: hpcbridge/v1\nkind: Job\nname: c\ncommand: [sh]\ncontainer: {container}\n"


def test_the_readme_example_is_a_valid_spec() -> None:
    section = README.read_text().split("### Container environments", 1)[1]
    document = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert document is not None
    spec = load_spec_text(document.group(1), source="README")
    assert spec.container is not None and spec.container.mounts == ("/scratch/ref:/ref:ro",)


@pytest.mark.parametrize(
    ("container", "says"),
    [
        ("{image: x, mounts: [data:/data]}", "is not host:container[:ro]"),
        ("{image: x, mounts: ['/a:/b:rx']}", "is not host:container[:ro]"),
        ("{image: x, env_passthrough: [1BAD]}", "'1BAD' is not valid"),
        ("{image: x, digest: 'md5:00'}", "container.digest"),
        ("{image: ''}", "container.image"),
    ],
)
def test_a_bad_container_block_names_the_field_and_the_form(container: str, says: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(_spec(container), source="job.yaml")
    assert says in str(caught.value)


def test_a_tree_digest_follows_content_and_modes_not_times(tmp_path: Path) -> None:
    root = tmp_path / "a"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "link").symlink_to("tool")
    first = tree_digest(root)
    copy = tmp_path / "b"
    shutil.copytree(root, copy, symlinks=True)
    os.utime(copy / "bin" / "tool", (0, 0))
    assert tree_digest(copy) == first
    (copy / "bin" / "tool").chmod(0o755)
    assert tree_digest(copy) != first
    (root / "bin" / "tool").write_text("#!/bin/sh\nexit 1\n")
    assert tree_digest(root) != first


def test_the_launcher_refuses_an_image_whose_digest_moved(tmp_path: Path) -> None:
    root = tmp_path / "img"
    (root / "mnt" / "0").mkdir(parents=True)
    config = {"kind": "directory", "image": str(root), "digest": tree_digest(root), "mounts": []}
    argv = argv_for(config, str(tmp_path), ["true"])
    assert argv == ch_run_argv(config, root, str(tmp_path), ["true"])
    assert argv[:5] == ["ch-run", "--bind", f"{tmp_path}:/mnt/0", "--cd", "/mnt/0"]
    (root / "new").write_text("x")
    with pytest.raises(ImageChangedError, match="changed since submission: pinned sha256:"):
        argv_for(config, str(tmp_path), ["true"])


def test_backends_wrap_the_command_and_read_the_mark_back(tmp_path: Path) -> None:
    spec = load_spec_text(
        _spec("{image: /img, digest: 'sha256:" + "a" * 64 + "', env_passthrough: [LANG]}"),
        source="job.yaml",
    )
    argv = wrap_argv(spec, "python3", tmp_path, ["sh"])
    assert argv[:3] == ["python3", "-m", "hpcbridge.containers.launch"]
    assert json.loads(argv[3]) == json.loads(launch_config(spec))
    assert argv[4:] == [str(tmp_path), "--", "sh"]
    assert json.loads(argv[3])["env"] == ["LANG"]
    (tmp_path / "environment_changed").write_text("container image /img changed\n")
    assert environment_change(str(tmp_path), 78) == "container image /img changed"
    assert environment_change(str(tmp_path), 1) is None
