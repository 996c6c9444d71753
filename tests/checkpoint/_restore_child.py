"""Subprocess for the no-BLAKE3 tests: restore where the ``blake3`` module cannot be imported.

python _restore_child.py DIRECTORY STATUS_DIR FILE    prints one JSON object
"""

from __future__ import annotations

import sys

sys.modules["blake3"] = None  # type: ignore[assignment]  # `import blake3` now fails

import importlib  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402

from hpcbridge.checkpoint import Checkpointer, CorruptCheckpointError  # noqa: E402


def blake3_importable() -> bool:
    try:
        importlib.import_module("blake3")
    except ImportError:
        return False
    return True


def main() -> None:
    directory, status_dir, name = sys.argv[1:4]
    ckpt = Checkpointer(directory, job_id="job-1", attempt=2, status_dir=status_dir)
    found = ckpt.restore()
    result: dict[str, Any] = {
        "blake3_importable": blake3_importable(),
        "step": None if found is None else found.step,
        "verified": None if found is None else found.verified,
        "skipped": [[s.step, s.reason] for s in ckpt.last_skipped],
    }
    if found is not None:
        try:
            result["content"] = found.read_bytes(name).hex()
        except CorruptCheckpointError as exc:
            result["read_error"] = str(exc)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
