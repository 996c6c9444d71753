"""The job wrapper's last check before the command: staged inputs still match the manifest.

Run on the node as ``python -m hpcbridge.checkpoint.verify_inputs MANIFEST STATUS_DIR --
ARGV...``: it re-hashes every input the control plane staged and, when all match, replaces
itself with ARGV (same pid, so signals and the exit status are the command's own). A
missing, changed or truncated input writes ``STATUS_DIR/inputs_unverified`` (which file,
both digests) and exits with :data:`EXIT_CODE`; the command never runs on such inputs.
Standard library only (BLAKE3 where the manifest names it and blake3 is installed; a
digest that cannot be computed here fails the check, it is never skipped).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from hpcbridge.checkpoint._hashing import can_verify, hash_file

EXIT_CODE = 79
MARK = "inputs_unverified"


def problems(manifest: Path) -> list[str]:
    """Why the inputs cannot be trusted; empty when every file matches."""
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError) as exc:
        return [f"cannot read the input manifest {manifest}: {exc}"]
    found = []
    for entry in files:
        path = Path(entry["path"])
        algorithm, _, expected = str(entry["digest"]).partition(":")
        try:
            size = path.stat().st_size
            if size != entry["size"]:
                found.append(f"{path}: {size} bytes, staged {entry['size']}")
                continue
            if algorithm == "md5":
                digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            elif can_verify(algorithm):
                digest = hash_file(path, algorithm)[1]
            else:
                found.append(f"{path}: {algorithm} digests cannot be computed on this node")
                continue
        except OSError as exc:
            found.append(f"{path}: {exc.strerror or exc}")
            continue
        if digest != expected:
            found.append(
                f"{path}: checksum mismatch, staged {algorithm}:{expected}, "
                f"now {algorithm}:{digest}"
            )
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: verify_inputs MANIFEST STATUS_DIR -- ARGV...", file=sys.stderr)
        return 2
    manifest, status_dir, command = Path(argv[0]), argv[1], argv[3:]
    found = problems(manifest)
    if found:
        message = "inputs changed after staging: " + "; ".join(found)
        print(f"hpcbridge: {message}", file=sys.stderr)
        if status_dir:
            os.makedirs(status_dir, exist_ok=True)
            Path(status_dir, MARK).write_text(message + "\n")
        return EXIT_CODE
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
