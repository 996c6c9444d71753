"""The job wrapper's last check before the command: staged inputs still match the manifest.

Run on the node as ``python -m hpcbridge.checkpoint.verify_inputs MANIFEST STATUS_DIR --
ARGV...``: it re-hashes every input the control plane staged and, when all match, replaces
itself with ARGV (same pid, so signals and the exit status are the command's own). A
missing, changed or truncated input writes ``STATUS_DIR/inputs_unverified`` (which file,
both digests) and exits with :data:`EXIT_CODE`; the command never runs on such inputs.
Inputs staged without waiting for the disk (a local job's: the manifest names the boot
they were staged in) that no longer match after this machine restarted were torn by the
crash, not changed: that exits with :data:`TORN_EXIT_CODE`, and the attempt is retried
with its inputs staged again.
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
TORN_EXIT_CODE = 80
MARK = "inputs_unverified"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str | None:
    """This boot of this machine (Linux); None where the kernel does not say."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def _staged_unsynced_in(manifest: Path) -> str | None:
    """The boot whose writeback a manifest's files were left to (None: on disk first)."""
    try:
        found = json.loads(manifest.read_text()).get("unsynced_boot")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


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
        staged_in = _staged_unsynced_in(manifest)
        torn = staged_in is not None and staged_in != boot_id()
        if torn:
            message = (
                "inputs staged before this machine restarted, and not on disk yet then, "
                "do not match (staging them again): " + "; ".join(found)
            )
        else:
            message = "inputs changed after staging: " + "; ".join(found)
        print(f"hpcbridge: {message}", file=sys.stderr)
        if status_dir:
            os.makedirs(status_dir, exist_ok=True)
            Path(status_dir, MARK).write_text(message + "\n")
        return TORN_EXIT_CODE if torn else EXIT_CODE
    sys.stdout.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
