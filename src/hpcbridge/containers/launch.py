"""The job wrapper's container step: check the image is still the one pinned at
submission, then run the command in it.

Run on the node as ``python -m hpcbridge.containers.launch CONFIG STATUS_DIR -- ARGV...``
(CONFIG: the JSON of :func:`hpcbridge.containers.launch_config`). It resolves the image
again (Podman's image ID for a name, the content digest of a directory or tarball) and,
when it still matches the pinned digest, replaces itself (exec, same pid: signals and the
exit status are the command's own) with ``podman run`` of the image by its ID, or
``ch-run`` on the directory image (a tarball is unpacked once per digest). A changed or
missing image writes ``STATUS_DIR/environment_changed`` (the image and both digests) and
exits with :data:`EXIT_CODE`; the command never runs in another image. Standard library
only.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hpcbridge.containers import _rootless
from hpcbridge.containers._digest import current_digest
from hpcbridge.containers._marks import EXIT_CODE, MARK

GUEST_WORKDIR = "/mnt/0"
"""Where ch-run binds the job's working directory when the image has no such path
(Charliecloud images keep /mnt/0-9 as bind targets)."""


_HPCBRIDGE_DIRS = ("HPCBRIDGE_STATUS_DIR", "HPCBRIDGE_DATA_DIR", "HPCBRIDGE_CHECKPOINT_DIR")


class ImageChangedError(Exception):
    """The image is not the one pinned at submission."""


def _unpacked(tarball: Path, digest: str) -> Path:
    """A tarball image unpacked into a directory named by its digest (once per node)."""
    cache = Path(tempfile.gettempdir(), "hpcbridge-images")
    target = cache / digest.removeprefix("sha256:")
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="tar")
    try:
        staging.rename(target)
    except OSError:  # another job unpacked it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 4_194_304


def _limits() -> list[str]:
    """The limits this job was given. Without them Podman raises open files and processes,
    which fails where the runtime lacks CAP_SYS_RESOURCE; processes stay within the kernel's
    pid_max, to which Podman lowers its own limit (its children cannot exceed it)."""
    found = []
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        soft, hard = resource.getrlimit(which)
        if name == "nproc":
            cap = _pid_max()
            soft, hard = min(soft, cap) if soft >= 0 else cap, min(hard, cap) if hard >= 0 else cap
        if resource.RLIM_INFINITY not in (soft, hard):
            found += ["--ulimit", f"{name}={soft}:{hard}"]
    return found


def _oci_runtime() -> list[str]:
    """crun refuses hosts with cgroup v1 controllers beside a cgroup2 mount (hybrid);
    runc runs there."""
    hybrid = Path("/sys/fs/cgroup/unified/cgroup.controllers").exists()
    return ["--runtime", "runc"] if hybrid and shutil.which("runc") else []


def _gpu_devices() -> list[str]:
    """The host's NVIDIA devices: through CDI when a spec is installed, else each
    /dev/nvidia* device node."""
    for cdi in (Path("/etc/cdi"), Path("/var/run/cdi")):
        if any(cdi.glob("nvidia*.yaml")) or any(cdi.glob("nvidia*.json")):
            return ["--device", "nvidia.com/gpu=all"]
    return [arg for dev in sorted(Path("/dev").glob("nvidia*")) for arg in ("--device", str(dev))]


def podman_argv(config: dict[str, Any], workdir: str, command: list[str]) -> list[str]:
    # --network=host: no slirp4netns or pasta needed, rootless or not.
    manager = _rootless.cgroup_manager(_rootless.podman_environment(os.environ))
    argv = ["podman", *_oci_runtime(), *manager, "run", "--rm", "--pull=never", "--network=host"]
    argv += _limits()
    argv += ["--volume", f"{workdir}:{workdir}", "--workdir", workdir]
    for mount in config["mounts"]:
        argv += ["--volume", mount]
    for name in _HPCBRIDGE_DIRS:  # status, data and checkpoint directories, same paths
        where = os.environ.get(name)
        if where and where != workdir:
            os.makedirs(where, exist_ok=True)  # the checkpoint SDK writes there from inside
            argv += ["--volume", f"{where}:{where}"]
    hpcbridge = sorted(n for n in os.environ if n.startswith("HPCBRIDGE_"))
    for name in [*hpcbridge, *config["env"]]:
        if name in os.environ:
            argv += ["--env", name]  # the value comes from this environment
    if config.get("gpus"):
        argv += _gpu_devices()
    return [*argv, config["digest"].removeprefix("sha256:"), *command]


def ch_run_argv(config: dict[str, Any], image: Path, workdir: str, command: list[str]) -> list[str]:
    guest = workdir if Path(image, workdir.lstrip("/")).is_dir() else GUEST_WORKDIR
    argv = ["ch-run", "--bind", f"{workdir}:{guest}", "--cd", guest]
    for mount in config["mounts"]:
        host, guest_path = mount.split(":")[:2]  # ch-run binds read-write only
        argv += ["--bind", f"{host}:{guest_path}"]
    # ch-run passes the whole environment; the host's devices are visible as they are.
    return [*argv, str(image), "--", *command]


def argv_for(config: dict[str, Any], workdir: str, command: list[str]) -> list[str]:
    """The runtime's argv for the pinned image; raises :class:`ImageChangedError`."""
    kind, image, pinned = config["kind"], config["image"], config["digest"]
    now = current_digest(kind, image)
    if now != pinned:
        found = f"now {now}" if now else "it is gone"
        raise ImageChangedError(
            f"container image {image} changed since submission: pinned {pinned}, {found}; "
            "restore that image, or submit again to use the new one"
        )
    if kind == "podman":
        return podman_argv(config, workdir, command)
    root = Path(image) if kind == "directory" else _unpacked(Path(image), pinned)
    return ch_run_argv(config, root, workdir, command)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: launch CONFIG STATUS_DIR -- ARGV...", file=sys.stderr)
        return 2
    config, status_dir, command = json.loads(argv[0]), argv[1], argv[3:]
    if config["kind"] == "podman" and (rootless := _rootless.problems()):
        print(f"hpcbridge: cannot run Podman on this node: {'; '.join(rootless)}", file=sys.stderr)
        return 125  # Podman's own status for "Podman itself failed"
    try:
        runtime_argv = argv_for(config, os.getcwd(), command)
    except ImageChangedError as exc:
        print(f"hpcbridge: {exc}", file=sys.stderr)
        if status_dir:
            os.makedirs(status_dir, exist_ok=True)
            Path(status_dir, MARK).write_text(f"{exc}\n")
        return EXIT_CODE
    if "USER" not in os.environ:  # ch-run refuses to start without it
        os.environ["USER"] = pwd.getpwuid(os.getuid()).pw_name
    sys.stdout.flush()
    env = _rootless.podman_environment(os.environ) if config["kind"] == "podman" else os.environ
    try:
        os.execvpe(runtime_argv[0], runtime_argv, env)
    except OSError as exc:
        print(f"hpcbridge: cannot run {runtime_argv[0]} on this node: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
