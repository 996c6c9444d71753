"""A damaged checkpoint must never be returned; the newest intact one is, and the skip reported."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcbridge.checkpoint import MANIFEST_NAME, Checkpointer, CorruptCheckpointError, Manifest
from tests.checkpoint._helpers import flip_bit, read_events

MakeCkpt = Callable[..., Checkpointer]
# Each example wipes the directory first, so sharing the function-scoped fixture is fine.
FIXTURES_OK = [HealthCheck.function_scoped_fixture]

FILES = {"model.bin": bytes(range(256)) * 4096, "opt/state.bin": b"\x07" * 5000, "s.json": b"{}"}


def two_checkpoints(make_ckpt: MakeCkpt) -> tuple[Checkpointer, Path]:
    ckpt = make_ckpt()
    ckpt.save_bytes(1, FILES)
    ckpt.save_bytes(2, FILES)
    return ckpt, ckpt.directory / "step-00000002"


def assert_falls_back(
    ckpt: Checkpointer, reason: str, status_dir: Path, mode: str = "full"
) -> None:
    found = ckpt.latest_valid(verify="full" if mode == "full" else "size")
    assert found is not None
    assert found.step == 1
    assert [s.step for s in found.skipped] == [2]
    assert reason in found.skipped[0].reason
    events = [e for e in read_events(status_dir) if e["type"] == "checkpoint_skipped_corrupt"]
    assert events[-1]["step"] == 2 and reason in events[-1]["reason"]
    assert events[-1]["job_id"] == "job-1" and events[-1]["attempt"] == 1


def test_bit_flip_in_a_data_file(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    flip_bit(newest / "model.bin", 123_456, bit=3)
    assert_falls_back(ckpt, "checksum mismatch: model.bin", status_dir)


def test_size_check_is_fast_but_blind_to_bit_flips(make_ckpt: MakeCkpt) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    flip_bit(newest / "model.bin", 10)
    found = ckpt.latest_valid(verify="size")
    assert found is not None and found.step == 2 and found.verified == "size"
    with pytest.raises(CorruptCheckpointError):
        found.read_bytes("model.bin")  # reading still checks the content


def test_truncation(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    with open(newest / "opt/state.bin", "r+b") as f:
        f.truncate(4999)
    assert_falls_back(ckpt, "size mismatch: opt/state.bin", status_dir, mode="size")


def test_missing_file(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    (newest / "s.json").unlink()
    assert_falls_back(ckpt, "file missing: s.json", status_dir)


def test_missing_manifest(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    (newest / MANIFEST_NAME).unlink()
    assert_falls_back(ckpt, "missing manifest", status_dir, mode="size")


def test_empty_and_garbage_manifests(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    (newest / MANIFEST_NAME).write_bytes(b"")
    assert_falls_back(ckpt, "not valid JSON", status_dir)
    (newest / MANIFEST_NAME).write_bytes(b"[1, 2]")
    assert_falls_back(ckpt, "not a JSON object", status_dir)


def test_edited_manifest_fails_its_own_checksum(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    document = json.loads((newest / MANIFEST_NAME).read_text())
    document["files"][0]["size"] += 0  # untouched content...
    document["metadata"] = {"sneaky": True}  # ...but a changed field
    (newest / MANIFEST_NAME).write_text(json.dumps(document))
    assert_falls_back(ckpt, "manifest checksum mismatch", status_dir)


@pytest.mark.parametrize(("version", "algorithm"), [(2, "blake3"), (2, "sha256"), (1, "md5")])
def test_manifest_naming_an_algorithm_its_version_never_wrote(
    make_ckpt: MakeCkpt, status_dir: Path, version: int, algorithm: str
) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    manifest = Manifest.from_json((newest / MANIFEST_NAME).read_bytes())
    edited = dataclasses.replace(manifest, version=version, algorithm=algorithm)
    (newest / MANIFEST_NAME).write_bytes(edited.to_json())  # with a matching self-checksum
    assert_falls_back(
        ckpt, f"manifest version {version} cannot name algorithm {algorithm!r}", status_dir
    )


def test_directory_renamed_to_another_step(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    os.rename(newest, ckpt.directory / "step-00000003")
    found = ckpt.latest_valid()
    assert found is not None and found.step == 1
    assert "does not match the name" in found.skipped[0].reason


def test_leftover_temporary_directory_is_never_considered(make_ckpt: MakeCkpt) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    # A complete-looking save of step 9 that crashed before its rename, and other debris.
    shutil.copytree(newest, ckpt.directory / ".tmp-step-00000009-a1-00000000-1-00000000")
    shutil.copytree(newest, ckpt.directory / ".trash-step-00000009-00000000")
    (ckpt.directory / "step-00000010").write_text("a file, not a directory")
    (ckpt.directory / "step-11").mkdir()
    (ckpt.directory / "notes").mkdir()
    found = ckpt.latest_valid()
    assert found is not None and found.step == 2 and found.skipped == ()


def test_all_corrupt_gives_none_and_reports_every_skip(make_ckpt: MakeCkpt) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    (newest / MANIFEST_NAME).unlink()
    (ckpt.directory / "step-00000001" / "model.bin").write_bytes(b"")
    assert ckpt.latest_valid() is None
    assert [s.step for s in ckpt.last_skipped] == [2, 1]
    assert ckpt.restore() is None


def test_empty_or_missing_directory(make_ckpt: MakeCkpt) -> None:
    ckpt = make_ckpt()
    assert ckpt.latest_valid() is None
    assert not ckpt.directory.exists()  # reading creates nothing


def test_read_bytes_refuses_content_changed_after_verification(make_ckpt: MakeCkpt) -> None:
    ckpt, newest = two_checkpoints(make_ckpt)
    found = ckpt.latest_valid()
    assert found is not None
    flip_bit(newest / "s.json", 0)
    with pytest.raises(CorruptCheckpointError):
        found.read_json("s.json")
    with pytest.raises(KeyError):
        found.file("not-in-manifest")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_bit_flip_is_caught(make_ckpt: MakeCkpt, data: st.DataObject) -> None:
    ckpt = make_ckpt()
    shutil.rmtree(ckpt.directory, ignore_errors=True)
    ckpt.save_bytes(1, FILES)
    ckpt.save_bytes(2, FILES)
    newest = ckpt.directory / "step-00000002"
    name = data.draw(st.sampled_from([*FILES, MANIFEST_NAME]))
    size = (newest / name).stat().st_size
    # The manifest's length varies with its timestamp: draw a position, not an offset.
    offset = data.draw(st.integers(0, 2**32)) % size
    flip_bit(newest / name, offset, data.draw(st.integers(0, 7)))
    found = ckpt.latest_valid()
    assert found is not None and found.step == 1
    assert found.skipped[0].step == 2


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_truncation_is_caught_even_by_the_size_check(
    make_ckpt: MakeCkpt, data: st.DataObject
) -> None:
    ckpt = make_ckpt()
    shutil.rmtree(ckpt.directory, ignore_errors=True)
    ckpt.save_bytes(1, FILES)
    ckpt.save_bytes(2, FILES)
    newest = ckpt.directory / "step-00000002"
    name = data.draw(st.sampled_from([*FILES, MANIFEST_NAME]))
    size = (newest / name).stat().st_size
    with open(newest / name, "r+b") as f:
        f.truncate(data.draw(st.integers(0, 2**32)) % size)
    found = ckpt.latest_valid(verify="size")
    assert found is not None and found.step == 1
