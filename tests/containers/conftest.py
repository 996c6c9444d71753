"""Small real images built from a local root filesystem (no registry is reachable): Debian's
``busybox-static`` binary and a marker file, as a Charliecloud directory image, a tarball
and a Podman image imported from that tarball."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")
MARKER = "/etc/hb-image"
APPLETS = ("sh", "echo", "cat", "ls", "sha256sum", "tr", "hostname", "id")


@dataclass(frozen=True)
class Images:
    directory: Path
    tarball: Path
    podman: str
    """A tag of the image imported from the tarball."""


def _needs(program: str, package: str) -> None:
    if shutil.which(program) is None:
        reason = f"needs {program} (Debian package {package}; scripts/test installs it as root)"
        if os.geteuid() == 0:  # CI runs as root and installs it: never skip there
            pytest.fail(reason)
        pytest.skip(reason)


def make_rootfs(root: Path, marker: str) -> Path:
    """A tree ch-run and Podman can run: busybox, its applets, the mount points ch-run
    binds (/dev, /proc, /sys, /etc/passwd, /etc/group) and /mnt/0 for the work dir."""
    for directory in ("bin", "dev", "proc", "sys", "etc", "tmp", "home", "mnt/0", "run"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / MARKER.lstrip("/")).write_text(marker + "\n")
    return root


def make_tarball(root: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return out


def podman_import(tarball: Path, tag: str) -> str:
    subprocess.run(
        ["podman", "import", "--quiet", str(tarball), tag],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return tag


def podman_rmi(tag: str) -> None:
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False, timeout=120)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    _needs("busybox", "busybox-static")
    _needs("podman", "podman")
    _needs("ch-run", "charliecloud-runtime")
    base = tmp_path_factory.mktemp("images")
    root = make_rootfs(base / "rootfs", "hb-test-image one")
    tarball = make_tarball(root, base / "rootfs.tar")
    tag = podman_import(tarball, f"localhost/hpcb-test-{uuid.uuid4().hex[:8]}:1")
    try:
        yield Images(directory=root, tarball=tarball, podman=tag)
    finally:
        podman_rmi(tag)
