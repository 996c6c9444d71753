"""SQLite refuses a database on a network filesystem: the mount table read as the kernel
writes it (lines in the format of /proc/self/mountinfo, as on HPC login nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.errors import ConfigError
from hpcbridge.store import SqlStore
from hpcbridge.store._filesystems import (
    MOUNTINFO,
    NETWORK_FILESYSTEMS,
    mount_of,
    network_mount,
    parse_mountinfo,
    refuse_network_filesystem,
)

SAMPLE = """\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
41 22 0:38 / /tmp rw,nosuid,nodev shared:20 - tmpfs tmpfs rw,size=8G
60 22 0:45 / /home rw,relatime shared:30 - nfs4 fs1:/export/home rw,vers=4.2,sec=sys
61 60 259:3 / /home/alice/local rw,relatime shared:31 - xfs /dev/nvme1n1 rw
62 22 0:46 / /scratch rw,relatime shared:32 - lustre 10.0.0.1@o2ib:/scratch rw,flock
63 22 0:47 / /gpfs/projects rw,relatime shared:33 - gpfs projects rw
64 22 0:48 / /mnt/beegfs rw,relatime shared:34 - beegfs beegfs_nodev rw
65 22 0:49 / /mnt/ceph rw,relatime shared:35 - ceph 10.0.0.2:6789:/ rw,name=admin
66 22 0:50 / /mnt/smb rw,relatime shared:36 - cifs //nas/share rw,vers=3.1.1
67 22 0:51 / /mnt/host rw,relatime shared:37 - 9p hostshare rw,trans=virtio
68 22 0:52 / /mnt/remote rw,nosuid,nodev,relatime shared:38 - fuse.sshfs me@login:/data rw
69 22 0:53 / /mnt/my\\040drive rw,relatime shared:39 - nfs srv:/a\\040b rw,vers=3
70 22 0:54 / /data rw,relatime - xfs /dev/sdb1 rw
71 22 0:55 / /data rw,relatime - nfs srv:/data rw,vers=3
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/home/alice/.local/share/hpcbridge/hpcbridge.db", "nfs4"),
        ("/home", "nfs4"),
        ("/scratch/u/hpcbridge.db", "lustre"),
        ("/gpfs/projects/p1/hpcbridge.db", "gpfs"),
        ("/mnt/beegfs/x.db", "beegfs"),
        ("/mnt/ceph/x.db", "ceph"),
        ("/mnt/smb/x.db", "cifs"),
        ("/mnt/host/x.db", "9p"),
        ("/mnt/remote/x.db", "fuse.sshfs"),
        ("/mnt/my drive/x.db", "nfs"),  # mountinfo escapes the space as \040
        ("/data/x.db", "nfs"),  # the later mount on /data hides the earlier one
    ],
)
def test_databases_on_network_filesystems_are_found(path: str, fstype: str) -> None:
    mount = network_mount(SAMPLE, path)
    assert mount is not None
    assert mount.fstype == fstype


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/hpcbridge/hpcbridge.db",  # the root filesystem (ext4)
        "/tmp/x.db",
        "/home/alice/local/hpcbridge.db",  # a local disk mounted inside the NFS home
        "/homework/x.db",  # a name that starts like a mount point is not inside it
        "/gpfs/x.db",
    ],
)
def test_databases_on_local_filesystems_pass(path: str) -> None:
    assert network_mount(SAMPLE, path) is None


def test_the_mount_table_is_parsed_field_by_field() -> None:
    mounts = parse_mountinfo(SAMPLE + "garbage line\n\n")
    assert len(mounts) == 15
    assert (mounts[3].mount_point, mounts[3].fstype, mounts[3].source) == (
        "/home",
        "nfs4",
        "fs1:/export/home",
    )
    assert mounts[12].source == "srv:/a b"


def test_the_error_names_the_path_the_filesystem_and_the_fix(tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    table.write_text(SAMPLE)
    with pytest.raises(ConfigError) as caught:
        refuse_network_filesystem(Path("/scratch/u/hpcbridge.db"), table)
    message = str(caught.value)
    assert "/scratch/u/hpcbridge.db" in message
    assert "lustre" in message
    assert "HPCBRIDGE_HOME" in message
    assert "HPCBRIDGE_DATABASE_URL" in message
    assert caught.value.exit_code == 2


def test_the_real_local_filesystem_is_not_refused(tmp_path: Path) -> None:
    """Through the real mount table: the test's temporary directory is node-local."""
    if MOUNTINFO.exists():
        mount = mount_of(parse_mountinfo(MOUNTINFO.read_text()), str(tmp_path.resolve()))
        assert mount is not None
        assert mount.fstype not in NETWORK_FILESYSTEMS
    refuse_network_filesystem(tmp_path / "hpcbridge.db")
    store = SqlStore(f"sqlite:///{tmp_path / 'hpcbridge.db'}")
    store.close()


def test_without_a_mount_table_nothing_is_checked(tmp_path: Path) -> None:
    refuse_network_filesystem(Path("/scratch/x.db"), tmp_path / "missing")
