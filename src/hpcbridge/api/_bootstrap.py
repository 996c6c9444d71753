"""The first administrator's token: written on the server's first start to a file only its
owner can read, so that someone can log in and create the real tokens.

The log says where the file is, never the token. Once any token exists (or the file does),
nothing is written again; delete the file after use and revoke the token when done.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import structlog

BOOTSTRAP_FILE = "bootstrap-token"
BOOTSTRAP_TTL_S = 7 * 24 * 3600.0
log = structlog.get_logger("hpcbridge.api")


def write_bootstrap_token(
    home: Path, *, has_tokens: Callable[[], bool], create: Callable[[], str]
) -> Path | None:
    """Create the token with ``create`` and write it to ``home/bootstrap-token`` (0600)
    when neither that file nor any token exists; return the path written, or None."""
    path = home / BOOTSTRAP_FILE
    if path.exists() or has_tokens():
        return None
    home.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two servers starting at once cannot both write; 0600 from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (create() + "\n").encode())
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    log.warning(
        "bootstrap_token_written",
        path=str(path),
        hint="an admin token for every project, readable only by this user: create real "
        "tokens with it ('hpcbridge token create'), then delete the file and revoke it",
    )
    return path
