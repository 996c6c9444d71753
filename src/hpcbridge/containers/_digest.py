"""Digests of images: Podman's image ID, a tarball's bytes, a directory image's tree.

Standard library only: the job wrapper computes them again on the node.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from hpcbridge.containers._rootless import podman_environment

_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes (an image tarball)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def tree_digest(root: Path) -> str:
    """``sha256:<hex>`` of a directory image: every entry's relative path, type and
    permission bits, each file's content digest and each link's target, in sorted order.
    Times and owners are left out, so a copy of the same tree has the same digest."""
    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = Path(directory, name)
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISLNK(info.st_mode):
                entry = f"l {relative} {os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                entry = f"d {relative} {mode:o}"
            elif stat.S_ISREG(info.st_mode):
                entry = f"f {relative} {mode:o} {file_digest(path)}"
            else:  # devices, fifos, sockets: their kind is what matters
                entry = f"o {relative} {mode:o} {stat.S_IFMT(info.st_mode):o}"
            digest.update(entry.encode("utf-8", "surrogateescape") + b"\0")
    return f"sha256:{digest.hexdigest()}"


def podman_image_id(image: str) -> str | None:
    """``sha256:<id>`` of a Podman image by name or ID; None where Podman does not have it."""
    try:
        done = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=podman_environment(os.environ),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = done.stdout.strip()
    return f"sha256:{found}" if done.returncode == 0 and found else None


def current_digest(kind: str, image: str) -> str | None:
    """The image's digest now; None where it is gone."""
    try:
        if kind == "podman":
            return podman_image_id(image)
        if kind == "directory":
            return tree_digest(Path(image)) if Path(image).is_dir() else None
        return file_digest(Path(image))
    except OSError:
        return None
