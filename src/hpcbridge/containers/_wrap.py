"""How a backend runs a container job: the launcher in front of the command, and what its
exit means afterwards."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from hpcbridge.containers._marks import EXIT_CODE, MARK
from hpcbridge.containers._pin import image_location
from hpcbridge.spec import JobSpec

LAUNCH_MODULE = "hpcbridge.containers.launch"


def launch_config(spec: JobSpec) -> str:
    """What the launcher needs, as JSON: the pinned image and what the container sees."""
    container = spec.container
    if container is None:
        raise ValueError("launch_config needs a spec with a container")
    # Unpinned only in a preflight render (sbatch --test-only) before submission pins it;
    # run like that, the launcher would refuse: no image has an empty digest.
    digest = container.digest or ""
    kind, image = image_location(container, spec.submit_dir)
    names = sorted({*spec.env, *container.env_passthrough})
    return json.dumps(
        {
            "kind": kind,
            "image": image,
            "digest": digest,
            "mounts": list(container.mounts),
            "env": names,
            "gpus": spec.resources.gpus,
        },
        sort_keys=True,
    )


def wrap_argv(spec: JobSpec, python: str, status_dir: Path, argv: list[str]) -> list[str]:
    """``argv`` run in the job's container (unchanged without one)."""
    if spec.container is None:
        return argv
    return [python, "-m", LAUNCH_MODULE, launch_config(spec), str(status_dir), "--", *argv]


def shell_wrap(spec: JobSpec) -> list[str]:
    """The batch script's line that puts the launcher in front of ``"$@"``."""
    if spec.container is None:
        return []
    return [
        f'set -- "${{HPCBRIDGE_PYTHON:-python3}}" -m {LAUNCH_MODULE} '
        f'{shlex.quote(launch_config(spec))} "${{HPCBRIDGE_STATUS_DIR:-}}" -- "$@"'
    ]


def environment_change(status_dir: str | None, exit_code: int | None) -> str | None:
    """Why a failed attempt did not run: its image changed since submission (the mark
    the launcher leaves), or None."""
    if status_dir is None or exit_code != EXIT_CODE:
        return None
    try:
        return Path(status_dir, MARK).read_text().strip() or None
    except OSError:
        return None
