"""Container jobs with rootless Podman: the installed ``hpcbridge`` run by a user who is
not root, with its own Podman storage and data directory; a user without subordinate ids
is refused with the fix."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import assert_one_line_usage_error, installed_entry_point
from tests.containers.conftest import make_rootfs, make_tarball

USER, NO_RANGE_USER = "hpcb-rootless", "hpcb-nosubid"
SUBID_COUNT = 65536
COMMAND = ["sh", "-c", "cat /etc/hb-image; id -u; cat /proc/self/uid_map; echo x > made.txt"]


@dataclass(frozen=True)
class Rootless:
    user: str
    uid: int
    workdir: Path
    """The user's own directory for this session's files and its hpcbridge data."""
    hpcbridge: tuple[str, ...]
    """How the user runs hpcbridge."""


def _needs_root_and(program: str, package: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a user with subordinate ids and runs as it")
    if shutil.which(program) is None:  # CI runs as root and installs it: never skip there
        pytest.fail(f"needs {program} (Debian package {package}; scripts/test installs it)")


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=180
    )


def _as_user(
    user: str, *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``user`` through runuser (which sets HOME and USER; no systemd user
    session, so no XDG_RUNTIME_DIR unless given)."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
    return _run(["runuser", "-u", user, "--", *argv], cwd=cwd, env=base | (env or {}))


def _free_subid_start() -> int:
    """A start past every range in /etc/subuid and /etc/subgid."""
    ends = [100000]
    for file in ("/etc/subuid", "/etc/subgid"):
        for line in Path(file).read_text().splitlines() if Path(file).exists() else []:
            fields = line.split(":")
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                ends.append(int(fields[1]) + int(fields[2]))
    return max(ends)


def _ensure_user(user: str, *, subids: bool) -> int:
    """Create ``user`` (or reuse it) with a home, with or without subordinate id ranges."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        created = _run(
            ["useradd", "--create-home", "--shell", "/bin/sh", "--user-group", user]
            + ([] if subids else ["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"])
        )
        assert created.returncode == 0, created.stderr
    has = {flag: _run(["getsubids", *flag.split(), user]).returncode == 0 for flag in ("", "-g")}
    if subids and not all(has.values()):
        first = _free_subid_start()
        ids = f"{first}-{first + SUBID_COUNT - 1}"
        added = _run(["usermod", "--add-subuids", ids, "--add-subgids", ids, user])
        assert added.returncode == 0, added.stderr
    if not subids:
        for line in Path("/etc/subuid").read_text().splitlines():
            if line.startswith(f"{user}:"):
                _, start, count = line.split(":")
                ids = f"{start}-{int(start) + int(count) - 1}"
                _run(["usermod", "--del-subuids", ids, "--del-subgids", ids, user])
    return pwd.getpwnam(user).pw_uid


def _own_workdir(user: str) -> Path:
    home = Path(pwd.getpwnam(user).pw_dir)
    workdir = Path(tempfile.mkdtemp(dir=home, prefix="hpcb-test-"))
    shutil.chown(workdir, user, user)
    return workdir


def _chown_tree(root: Path, user: str) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid, follow_symlinks=False)


def _user_hpcbridge(user: str, scratch: Path) -> tuple[str, ...]:
    """The installed ``hpcbridge`` where the user can run its interpreter; else, in
    ``scratch``, a virtual environment on the system Python of the same version that sees
    this one's packages (one made from an interpreter under /root cannot be shared)."""
    script = str(installed_entry_point())
    if _as_user(user, script, "--help", cwd=Path("/")).returncode == 0:
        return (script,)
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        pytest.fail(f"{user} cannot run {script} and there is no {system} to run it with")
    venv = scratch / "venv"
    made = _run([str(system), "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    (site_dir,) = venv.glob("lib/python*/site-packages")
    (ours,) = (p for p in site.getsitepackages() if Path(p).is_dir())
    (site_dir / "hpcbridge-checkout.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    argv = (str(venv / "bin" / "python"), "-m", "hpcbridge")
    if _as_user(user, *argv, "--help", cwd=Path("/")).returncode != 0:
        pytest.fail(f"{user} cannot run hpcbridge: the checkout must be readable by other users")
    return argv


@pytest.fixture(scope="module")
def rootless() -> Iterator[Rootless]:
    _needs_root_and("runuser", "util-linux")
    _needs_root_and("newuidmap", "uidmap")
    _needs_root_and("podman", "podman")
    _needs_root_and("busybox", "busybox-static")
    uid = _ensure_user(USER, subids=True)
    workdir = _own_workdir(USER)
    scratch = Path(tempfile.mkdtemp(prefix="hpcb-rootless-"))
    scratch.chmod(0o755)  # every test user runs hpcbridge from here
    try:
        yield Rootless(USER, uid, workdir, _user_hpcbridge(USER, scratch))
    finally:
        # Podman's pause process keeps the user namespace; migrate stops it.
        _as_user(USER, "podman", "system", "migrate", cwd=workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _job(workdir: Path, image: str) -> Path:
    document: dict[str, object] = {"apiVersion": "hpcbridge/v1", "kind": "Job"}
    document |= {"name": "rootless", "command": COMMAND, "container": {"image": image}}
    path = workdir / "job.yaml"
    path.write_text(yaml.safe_dump(document))
    shutil.chown(path, USER, USER)
    return path


def _hpcbridge_env(workdir: Path) -> dict[str, str]:
    return {
        "HPCBRIDGE_HOME": str(workdir / "hb-home"),
        "COLUMNS": "300",
        "HPCBRIDGE_CONFIG": str(workdir / "none.toml"),
        "HPCBRIDGE_SITE_CONFIG": str(workdir / "none-site.toml"),
    }


def test_a_container_job_runs_with_rootless_podman(rootless: Rootless) -> None:
    workdir = rootless.workdir
    tarball = make_tarball(make_rootfs(workdir / "rootfs", "hb-rootless"), workdir / "img.tar")
    _chown_tree(workdir, USER)
    tag = "localhost/hpcb-rootless:1"
    imported = _as_user(USER, "podman", "import", "--quiet", str(tarball), tag, cwd=workdir)
    assert imported.returncode == 0, imported.stderr  # into the user's own storage
    # An XDG_RUNTIME_DIR inherited from root (as through su or sbatch) is not the user's.
    foreign = Path(tempfile.mkdtemp(prefix="hpcb-xdg-"))
    script = rootless.hpcbridge
    env = _hpcbridge_env(workdir) | {"XDG_RUNTIME_DIR": str(foreign)}
    try:
        ran = _as_user(USER, *script, "run", str(_job(workdir, tag)), cwd=workdir, env=env)
        assert ran.returncode == 0, (ran.stdout, ran.stderr)
        listed = _as_user(USER, *script, "list", "--json", cwd=workdir, env=env)
        (job,) = json.loads(listed.stdout)
        logs = _as_user(USER, *script, "logs", job["job_id"], cwd=workdir, env=env).stdout
        marker, uid_inside, *uid_map = logs.splitlines()
        assert (marker, uid_inside) == ("hb-rootless", "0")  # from the image, root inside
        # ... which is the user outside, and the user's subordinate range maps the others.
        inside_root, others = (line.split() for line in uid_map)
        assert inside_root == ["0", str(rootless.uid), "1"]
        (_, _, start, _) = _run(["getsubids", USER]).stdout.split()
        assert others[:2] == ["1", start]
        (made,) = (workdir / "hb-home").rglob("made.txt")
        assert made.stat().st_uid == rootless.uid
        inspect = _as_user(
            USER, "podman", "image", "inspect", "--format", "{{.Id}}", tag, cwd=workdir
        )
        provenance = _as_user(
            USER, *script, "provenance", job["job_id"], "--json", cwd=workdir, env=env
        )
        digest = json.loads(provenance.stdout)["container"]["digest"]
        assert digest == f"sha256:{inspect.stdout.strip()}"
    finally:
        foreign.rmdir()
        _as_user(USER, "podman", "rmi", "--force", tag, cwd=workdir)


def test_a_user_without_subordinate_ids_is_refused_with_the_fix(rootless: Rootless) -> None:
    _ensure_user(NO_RANGE_USER, subids=False)
    workdir = _own_workdir(NO_RANGE_USER)
    try:
        job = workdir / "job.yaml"
        job.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "hpcbridge/v1",
                    "kind": "Job",
                    "name": "r",
                    "command": ["true"],
                    "container": {"image": "localhost/anything:1"},
                }
            )
        )
        script = rootless.hpcbridge
        for command in ("validate", "submit"):
            done = _as_user(
                NO_RANGE_USER, *script, command, str(job), cwd=workdir, env=_hpcbridge_env(workdir)
            )
            line = assert_one_line_usage_error(done)
            assert (
                f"user {NO_RANGE_USER} has no subordinate id range in /etc/subuid and /etc/subgid"
                in line
            )
            assert (
                f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {NO_RANGE_USER}"
                in line
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
