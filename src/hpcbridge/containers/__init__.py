"""Container environments: a job's command runs in a pinned image.

At submission :func:`pin` resolves the image (Podman's image ID, or the content digest of a
directory image or tarball) and stores it in the spec; every attempt's wrapper
(:mod:`hpcbridge.containers.launch`) checks the image still has that digest before it runs
the command with ``podman run`` (by ID) or Charliecloud's ``ch-run``.
"""

from hpcbridge.containers._marks import EXIT_CODE, MARK
from hpcbridge.containers._pin import image_location, pin, problems
from hpcbridge.containers._wrap import (
    LAUNCH_MODULE,
    environment_change,
    launch_config,
    shell_wrap,
    wrap_argv,
)

__all__ = [
    "EXIT_CODE",
    "LAUNCH_MODULE",
    "MARK",
    "environment_change",
    "image_location",
    "launch_config",
    "pin",
    "problems",
    "shell_wrap",
    "wrap_argv",
]
