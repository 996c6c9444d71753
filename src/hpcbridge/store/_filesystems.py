"""Which filesystem holds a path: SQLite's WAL mode is unsafe on a network filesystem.

WAL keeps its index in shared memory next to the database and relies on POSIX locks that
network filesystems implement partly or not at all; processes on two hosts (or one host,
on some clients) then corrupt the database. The check reads the kernel's mount table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hpcbridge.errors import ConfigError

MOUNTINFO = Path("/proc/self/mountinfo")

# Filesystem types (as the kernel names them in mountinfo) that reach another host or a
# shared disk.
NETWORK_FILESYSTEMS = frozenset(
    {
        "9p",
        "afs",
        "beegfs",
        "ceph",
        "cifs",
        "davfs",
        "fuse.ceph-fuse",
        "fuse.cephfs",
        "fuse.davfs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.juicefs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.sshfs",
        "gfs2",
        "glusterfs",
        "gpfs",
        "lustre",
        "ncpfs",
        "nfs",
        "nfs4",
        "ocfs2",
        "orangefs",
        "pvfs2",
        "smb3",
        "smbfs",
        "wekafs",
    }
)


@dataclass(frozen=True, slots=True)
class Mount:
    mount_point: str
    fstype: str
    source: str


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``/proc/<pid>/mountinfo`` text, in its order (later ones shadow
    earlier ones at the same point). Lines that do not parse are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        # id parent major:minor root mount-point options [optional...] - fstype source super
        if "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        if len(fields) < separator + 3:
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fstype=fields[separator + 1],
                source=_unescape(fields[separator + 2]),
            )
        )
    return mounts


def mount_of(mounts: list[Mount], path: str) -> Mount | None:
    """The mount that holds the absolute, resolved ``path``: the deepest mount point above
    it, the last one listed where several share a point."""
    found: Mount | None = None
    depth = -1
    for mount in mounts:
        point = mount.mount_point.rstrip("/")  # "" for the root
        if (path == point or path.startswith(point + "/")) and len(point) >= depth:
            found, depth = mount, len(point)
    return found


def network_mount(mountinfo: str, path: str) -> Mount | None:
    """The mount holding ``path`` if it is a network filesystem (pure: for tests)."""
    mount = mount_of(parse_mountinfo(mountinfo), path)
    if mount is not None and mount.fstype in NETWORK_FILESYSTEMS:
        return mount
    return None


def refuse_network_filesystem(database: Path, mountinfo: Path = MOUNTINFO) -> None:
    """Raise ConfigError if the SQLite file ``database`` would lie on a network filesystem.
    Where the kernel has no mount table to read (not Linux), nothing is checked."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    path = os.path.realpath(database)
    mount = network_mount(text, path)
    if mount is None:
        return
    raise ConfigError(
        f"the SQLite database {path} lies on a network filesystem ({mount.fstype} "
        f"{mount.source} mounted at {mount.mount_point}), where SQLite's WAL mode can "
        "corrupt it",
        hint="set HPCBRIDGE_HOME to a node-local directory, or HPCBRIDGE_DATABASE_URL to a "
        "PostgreSQL URL (postgresql+psycopg://...)",
    )


def _unescape(field: str) -> str:
    r"""Undo mountinfo's octal escapes (``\040`` for a space, ``\011``, ``\012``, ``\134``)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        chunk = field[i + 1 : i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
