"""Subprocess for the kill tests: one save, SIGKILLed just before its N-th file-system call.

python save_child.py DIRECTORY KILL_AT STEP      (KILL_AT -1: count the calls, print it)
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from hpcbridge.checkpoint import Checkpointer

TRAPPED = ("open", "write", "fsync", "close", "rename", "replace", "mkdir", "unlink", "rmdir")


def payload(step: int) -> dict[str, bytes]:
    return {
        "model.bin": bytes([step % 256]) * (3 << 20),
        "nested/opt.bin": str(step).encode() * 1000,
    }


def main() -> None:
    directory, kill_at, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ckpt = Checkpointer(directory, keep=2, attempt=1)
    calls = 0

    def trap(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            calls += 1
            return real(*args, **kwargs)

        return wrapper

    for name in TRAPPED:
        setattr(os, name, trap(getattr(os, name)))
    files = payload(step)
    with ckpt.save(step) as d:
        d.write_bytes("model.bin", files["model.bin"])
        with open(d / "nested-by-path.bin", "wb") as f:  # written by path: hashed at commit
            f.write(files["nested/opt.bin"])
        d.write_bytes("nested/opt.bin", files["nested/opt.bin"])
    sys.stdout.write(f"{calls}\n")


if __name__ == "__main__":
    main()
