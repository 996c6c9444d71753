"""At submission: where a job's image is, whether its runtime is installed, and the digest
every attempt is pinned to."""

from __future__ import annotations

import shutil
from pathlib import Path

from hpcbridge.containers import _rootless
from hpcbridge.containers._digest import current_digest
from hpcbridge.errors import SpecError
from hpcbridge.spec import Container, JobSpec

PODMAN, DIRECTORY, TARBALL = "podman", "directory", "tarball"
_INSTALL = {
    PODMAN: "install Podman (Debian: apt-get install podman)",
    "ch-run": "install Charliecloud (Debian: apt-get install charliecloud-runtime)",
}


def is_path(image: str) -> bool:
    """Paths start with /, ./ or ../; anything else names a Podman image."""
    return image.startswith(("/", "./", "../"))


def image_location(container: Container, submit_dir: str | None) -> tuple[str, str]:
    """``(kind, image)``: a Podman name as written, a path made absolute."""
    if not is_path(container.image):
        return PODMAN, container.image
    path = Path(submit_dir or ".", container.image).resolve()
    return (DIRECTORY if path.is_dir() else TARBALL), str(path)


def runtime_of(kind: str) -> str:
    return PODMAN if kind == PODMAN else "ch-run"


def problems(spec: JobSpec) -> list[str]:
    """Why ``spec``'s container cannot run here: runtime missing, image missing, or the
    image no longer the one the spec pins. Each names the fix."""
    container = spec.container
    if container is None:
        return []
    kind, image = image_location(container, spec.submit_dir)
    runtime = runtime_of(kind)
    if shutil.which(runtime) is None:
        return [f"container: {runtime} is not installed; {_INSTALL[runtime]}"]
    if kind == PODMAN and (rootless := _rootless.problems()):
        return rootless
    if kind != PODMAN and not Path(image).exists():
        return [
            f"container.image: {image} does not exist; give the path of a directory image "
            "or an image tarball"
        ]
    digest = current_digest(kind, image)
    if digest is None:
        return [
            f"container.image: Podman has no image {image!r}; load it first ('podman load' "
            "or 'podman import'), or give a directory image's or tarball's path (./ or /)"
        ]
    if container.digest is not None and digest != container.digest:
        return [
            f"container.digest: image {image} is now {digest}, the spec pins "
            f"{container.digest}; restore that image, or remove container.digest to use "
            "the new one"
        ]
    return []


def pin(spec: JobSpec) -> JobSpec:
    """``spec`` with its image made absolute and its digest filled in."""
    container = spec.container
    if container is None:
        return spec
    found = problems(spec)
    if found:
        raise SpecError(f"job {spec.name!r} cannot run: " + "; ".join(found), problems=found)
    kind, image = image_location(container, spec.submit_dir)
    digest = current_digest(kind, image)
    pinned = container.model_copy(update={"image": image, "digest": digest})
    return spec.model_copy(update={"container": pinned})
