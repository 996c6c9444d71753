"""Rootless Podman: what a user who is not root needs before Podman can run a job's image,
and the environment Podman gets on the node.

Standard library only: the job wrapper's launcher checks the same on the node.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

SUBID_FIX = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _has_range(user: str, uid: int, *, group: bool) -> bool:
    """Whether ``user`` has a subordinate id range. ``getsubids`` (with newuidmap, in
    Debian's uidmap) also asks the name services nsswitch.conf names; without it, the
    files are read."""
    if shutil.which("getsubids"):
        try:
            done = subprocess.run(
                ["getsubids", *(["-g"] if group else []), user],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0 and bool(done.stdout.strip())
    path = Path("/etc/subgid" if group else "/etc/subuid")
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":")[0] in (user, str(uid)) for line in lines if line.count(":") == 2)


def problems(
    uid: int | None = None, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """Why rootless Podman cannot run images for the user ``uid`` (this process's by
    default) here, each with the fix; empty for root or where nothing is missing.

    Without subordinate ranges Podman falls back to mapping only the user itself, which
    breaks any image with files of another owner; with ranges it cannot start without
    newuidmap and newgidmap."""
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return []
    user = _user_name(uid)
    found = []
    missing = [tool for tool in ("newuidmap", "newgidmap") if which(tool) is None]
    if missing:
        found.append(
            f"container: rootless Podman needs {' and '.join(missing)} to map user {user}'s "
            "subordinate ids; install them (Debian: apt-get install uidmap)"
        )
    lacking = [
        file
        for file, group in (("/etc/subuid", False), ("/etc/subgid", True))
        if not _has_range(user, uid, group=group)
    ]
    if lacking:
        found.append(
            f"container: user {user} has no subordinate id range in {' and '.join(lacking)}, "
            f"which rootless Podman needs; as root run '{SUBID_FIX.format(user=user)}', "
            "then 'podman system migrate' as the user"
        )
    return found


def _usable_runtime_dir(path: str, uid: int) -> bool:
    """Podman's runtime directory must be the user's own and writable."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and os.access(path, os.W_OK)


def podman_environment(env: Mapping[str, str], uid: int | None = None) -> dict[str, str]:
    """``env`` for rootless Podman: an ``XDG_RUNTIME_DIR`` that is not this user's own
    writable directory (inherited through ``su`` or ``sbatch`` from another user or host)
    is dropped, so Podman uses its own under ``/tmp`` instead of failing."""
    uid = os.geteuid() if uid is None else uid
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if uid == 0 or runtime_dir is None or _usable_runtime_dir(runtime_dir, uid):
        return dict(env)
    return {name: value for name, value in env.items() if name != "XDG_RUNTIME_DIR"}


def cgroup_manager(env: Mapping[str, str], uid: int | None = None) -> list[str]:
    """Podman's cgroup manager option: cgroupfs for a user without a systemd user session
    (no user bus), where Podman's systemd default can only warn and fall back."""
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        return []
    bus = Path(env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}", "bus")
    return [] if bus.exists() else ["--cgroup-manager=cgroupfs"]
