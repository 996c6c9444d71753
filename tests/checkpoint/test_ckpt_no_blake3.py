"""Checkpoints written where BLAKE3 is installed restore where it is not.

Each restore runs in a child process that cannot import ``blake3`` (``_restore_child.py``);
the checkpoints are written here, in the test process, where ``blake3`` is installed, or
copied from ``golden/`` (written by the previous version of the SDK).
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcbridge.checkpoint import Checkpointer
from tests.checkpoint._helpers import flip_bit, read_events

MakeCkpt = Callable[..., Checkpointer]

CHILD = Path(__file__).with_name("_restore_child.py")
GOLDEN_V1 = Path(__file__).with_name("golden") / "manifest_v1"
MODEL = bytes(range(256)) * (40 << 12)  # 40 MiB: several hash pieces and a partial one


def restore_without_blake3(directory: Path, status_dir: Path, name: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(directory), str(status_dir), name],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["blake3_importable"] is False
    result["stderr"] = done.stderr
    return result


def copy_golden(kind: str, directory: Path) -> Path:
    (source,) = (GOLDEN_V1 / kind).iterdir()
    target = directory / source.name
    shutil.copytree(source, target)
    return target


def test_blake3_is_installed_where_the_checkpoints_are_written() -> None:
    importlib.import_module("blake3")  # otherwise the tests below prove nothing


def test_checkpoint_written_with_blake3_is_verified_and_restored_without_it(
    make_ckpt: MakeCkpt, status_dir: Path
) -> None:
    ckpt = make_ckpt()
    ckpt.save_bytes(1, {"model.bin": b"old"})
    ckpt.save_bytes(2, {"model.bin": MODEL, "state.json": b'{"step": 2}'})

    result = restore_without_blake3(ckpt.directory, status_dir, "model.bin")

    assert (result["step"], result["verified"], result["skipped"]) == (2, "full", [])
    assert bytes.fromhex(result["content"]) == MODEL
    restored = [e for e in read_events(status_dir) if e["type"] == "checkpoint_restored"]
    assert restored[-1]["step"] == 2 and restored[-1]["verify"] == "full"


def test_corruption_is_still_detected_without_blake3(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt = make_ckpt()
    ckpt.save_bytes(1, {"model.bin": MODEL})
    ckpt.save_bytes(2, {"model.bin": MODEL})
    flip_bit(ckpt.directory / "step-00000002" / "model.bin", 33 << 20, bit=5)

    result = restore_without_blake3(ckpt.directory, status_dir, "model.bin")

    assert (result["step"], result["verified"]) == (1, "full")
    assert result["skipped"] == [[2, "checksum mismatch: model.bin"]]
    assert bytes.fromhex(result["content"]) == MODEL


def test_previous_versions_blake3_checkpoint_is_used_unverified_not_discarded(
    tmp_path: Path, status_dir: Path
) -> None:
    directory = tmp_path / "ckpt"
    copy_golden("sha256", directory)  # step 3: older, but verifiable everywhere
    copy_golden("blake3", directory)  # step 7: only BLAKE3 digests

    result = restore_without_blake3(directory, status_dir, "state.json")

    assert (result["step"], result["verified"], result["skipped"]) == (7, "size", [])
    assert json.loads(bytes.fromhex(result["content"])) == {"step": 7, "loss": 0.25}
    events = read_events(status_dir)
    assert [e["type"] for e in events] == ["checkpoint_unverified", "checkpoint_restored"]
    unverified, restored = events
    assert unverified["step"] == 7 and unverified["path"] == str(directory / "step-00000007")
    assert "blake3" in unverified["reason"] and "not verified" in unverified["reason"]
    assert restored["step"] == 7 and restored["verify"] == "size"
    assert "step-00000007" in result["stderr"] and "not verified" in result["stderr"]


def test_previous_versions_blake3_checkpoint_still_gets_its_size_checks(
    tmp_path: Path, status_dir: Path
) -> None:
    directory = tmp_path / "ckpt"
    copy_golden("sha256", directory)
    newest = copy_golden("blake3", directory)
    with open(newest / "weights.bin", "r+b") as f:
        f.truncate(1000)

    result = restore_without_blake3(directory, status_dir, "state.json")

    assert (result["step"], result["verified"]) == (3, "full")
    assert result["skipped"] == [[7, "size mismatch: weights.bin (expected 16384, found 1000)"]]
    assert json.loads(bytes.fromhex(result["content"])) == {"step": 3}


def test_previous_versions_checkpoints_are_fully_verified_where_possible(
    tmp_path: Path, status_dir: Path
) -> None:
    directory = tmp_path / "ckpt"
    copy_golden("sha256", directory)
    newest = copy_golden("blake3", directory)
    ckpt = Checkpointer(directory, status_dir=status_dir)  # here blake3 is installed

    found = ckpt.restore()
    assert found is not None and (found.step, found.verified) == (7, "full")
    assert found.read_json() == {"step": 7, "loss": 0.25}

    flip_bit(newest / "weights.bin", 1000)
    found = ckpt.restore()
    assert found is not None and (found.step, found.verified) == (3, "full")
    assert [(s.step, s.reason) for s in found.skipped] == [(7, "checksum mismatch: weights.bin")]

    shutil.rmtree(newest)
    result = restore_without_blake3(directory, status_dir, "state.json")  # SHA-256, stdlib
    assert (result["step"], result["verified"], result["skipped"]) == (3, "full", [])
