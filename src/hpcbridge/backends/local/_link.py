"""The control plane's end of the launcher process: start it, send it messages, hear back.

Messages go down the launcher's stdin and come back on its stdout, one JSON object a line
(see ``_launcher``). A reader thread hands each reply to a callback; it holds the backend
only weakly, so a backend dropped without ``close()`` still closes the pipe, and its
launcher then starts nothing more and exits once its running jobs have ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog

from hpcbridge.backends.local import _launcher
from hpcbridge.errors import BackendError

log = structlog.get_logger("hpcbridge.backends.local")

Message = Mapping[str, Any]
OnReply = Callable[[Message], None]
OnGone = Callable[[], None]


class LauncherLink:
    """One launcher process. ``alive`` turns false when its stdout closes (it exited or
    was killed); the owner then starts another and sends it the state again."""

    def __init__(
        self,
        on_reply: weakref.WeakMethod[OnReply],
        on_gone: weakref.WeakMethod[OnGone],
        log_path: Path,
    ) -> None:
        # Plain pipes, no file objects: the reader thread owns the process and its stdout,
        # this object only the write end of its stdin, closed when it is closed or dropped.
        to_launcher, self._stdin = os.pipe()
        from_launcher, launcher_out = os.pipe()
        # Its own log, never this process's stderr: it outlives us, and a pipe it held
        # open would keep whoever reads our output (a shell's $(...)) waiting.
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            process = subprocess.Popen(
                [sys.executable, _launcher.__file__],
                stdin=to_launcher,
                stdout=launcher_out,
                stderr=log_fd,
                cwd="/",
                start_new_session=True,  # no terminal's Ctrl-C reaches it: it outlives us
            )
        except OSError as exc:
            for fd in (self._stdin, from_launcher):
                os.close(fd)
            raise BackendError(
                f"cannot start the local launcher ({sys.executable}): {exc}"
            ) from exc
        finally:
            os.close(to_launcher)
            os.close(launcher_out)
            os.close(log_fd)
        self._closer = weakref.finalize(self, os.close, self._stdin)
        self.alive = True
        self.pid = process.pid
        threading.Thread(
            target=_read,
            args=(process, from_launcher, weakref.ref(self), on_reply, on_gone),
            name="hpcbridge-local-launcher",
            daemon=True,
        ).start()

    def send(self, messages: Iterable[Message]) -> None:
        """Raises OSError when the launcher is gone."""
        data = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
        view = memoryview(data)
        while view:
            view = view[os.write(self._stdin, view) :]

    def close(self) -> None:
        """End of input: the launcher starts nothing more, and exits after its last job."""
        self._closer()


def _read(
    process: subprocess.Popen[bytes],
    fd: int,
    link: weakref.ref[LauncherLink],
    on_reply: weakref.WeakMethod[OnReply],
    on_gone: weakref.WeakMethod[OnGone],
) -> None:
    pending = b""
    try:
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            *lines, pending = (pending + data).split(b"\n")
            handle = on_reply()
            if handle is None:
                continue  # the backend is gone: read on, so the launcher never blocks writing
            for line in lines:
                try:
                    handle(json.loads(line))
                except Exception:  # one reply's bookkeeping must not stop the others
                    log.exception("local_launcher_reply_failed", reply=line[:200])
            del handle
    finally:
        os.close(fd)
        owner = link()
        if owner is not None:
            owner.alive = False
        del owner
        process.wait()
    gone = on_gone()
    if gone is not None:
        gone()
