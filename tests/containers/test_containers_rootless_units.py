"""Rootless Podman's checks and environment, without running Podman."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from hpcbridge.containers import _rootless, launch
from hpcbridge.containers._rootless import cgroup_manager, podman_environment, problems

NOBODY = pwd.getpwnam("nobody").pw_uid


def test_root_needs_nothing_and_keeps_its_environment() -> None:
    assert problems(uid=0, which=lambda _: None) == []
    env = {"XDG_RUNTIME_DIR": "/nonexistent", "A": "1"}
    assert podman_environment(env, uid=0) == env
    assert cgroup_manager(env, uid=0) == []


def test_missing_newuidmap_names_the_package() -> None:
    found = problems(uid=NOBODY, which=lambda tool: None if tool == "newgidmap" else "/x")
    assert found[0] == (
        "container: rootless Podman needs newgidmap to map user nobody's subordinate ids; "
        "install them (Debian: apt-get install uidmap)"
    )


def test_an_xdg_runtime_dir_that_is_not_the_users_own_is_dropped(tmp_path: Path) -> None:
    uid = os.geteuid() or NOBODY  # root keeps every environment: check as nobody
    os.chown(tmp_path, uid, -1)
    own = {"XDG_RUNTIME_DIR": str(tmp_path), "A": "1"}
    assert podman_environment(own, uid=uid) == own
    foreign = {"XDG_RUNTIME_DIR": str(tmp_path), "A": "1"}
    assert podman_environment(foreign, uid=uid + 1) == {"A": "1"}  # owned by another user
    gone = {"XDG_RUNTIME_DIR": str(tmp_path / "gone"), "A": "1"}
    assert podman_environment(gone, uid=uid) == {"A": "1"}


def test_cgroupfs_without_a_user_bus(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert cgroup_manager(env, uid=NOBODY) == ["--cgroup-manager=cgroupfs"]
    (tmp_path / "bus").touch()
    assert cgroup_manager(env, uid=NOBODY) == []


def test_the_launcher_refuses_before_podman_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_rootless, "problems", lambda: ["container: fix it"])
    config = '{"kind": "podman", "image": "x", "digest": "sha256:0", "mounts": [], "env": []}'
    assert launch.main([config, "", "--", "true"]) == 125
    assert (
        capsys.readouterr().err == "hpcbridge: cannot run Podman on this node: container: fix it\n"
    )
