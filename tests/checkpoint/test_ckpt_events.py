"""Events in $HPCBRIDGE_STATUS_DIR/events.jsonl: one whole JSON line per write."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.checkpoint import EVENTS_FILE, Checkpointer, EventLog
from tests.checkpoint._helpers import flip_bit, read_events

MakeCkpt = Callable[..., Checkpointer]


def test_save_restore_and_skip_events(make_ckpt: MakeCkpt, status_dir: Path) -> None:
    ckpt = make_ckpt(job_id="j-5", attempt=2)
    ckpt.save_bytes(1, {"a.bin": b"a" * 1000})
    ckpt.save_bytes(2, {"a.bin": b"b" * 1000, "b.bin": b"c" * 24})
    flip_bit(ckpt.directory / "step-00000002" / "a.bin", 0)
    found = ckpt.restore()
    assert found is not None and found.step == 1

    events = read_events(status_dir)
    assert [e["type"] for e in events] == [
        "checkpoint_saved",
        "checkpoint_saved",
        "checkpoint_skipped_corrupt",
        "checkpoint_restored",
    ]
    for event in events:
        assert isinstance(event["time"], float)
        assert event["job_id"] == "j-5" and event["attempt"] == 2
    first, second, skipped, restored = events
    assert first["step"] == 1 and first["bytes"] == 1000 and first["duration_s"] > 0
    assert second["step"] == 2 and second["bytes"] == 1024 and second["files"] == 2
    assert skipped["step"] == 2 and skipped["reason"] == "checksum mismatch: a.bin"
    assert restored["step"] == 1 and restored["bytes"] == 1000 and restored["skipped"] == 1
    assert restored["path"] == str(ckpt.directory / "step-00000001")


def test_environment_status_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCBRIDGE_STATUS_DIR", str(tmp_path / "st"))
    monkeypatch.setenv("HPCBRIDGE_JOB_ID", "env-job")
    monkeypatch.setenv("HPCBRIDGE_ATTEMPT", "4")
    Checkpointer(tmp_path / "c").save_json(3, {})
    (event,) = read_events(tmp_path / "st")
    assert (event["type"], event["job_id"], event["attempt"], event["step"]) == (
        "checkpoint_saved",
        "env-job",
        4,
        3,
    )


def test_without_status_dir_nothing_is_written(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path / "c")
    ckpt.save_json(1, {})
    assert ckpt.events.path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_unwritable_status_dir_never_breaks_the_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    ckpt = Checkpointer(tmp_path / "c", status_dir=blocker)
    with caplog.at_level(logging.WARNING, logger="hpcbridge.checkpoint"):
        ckpt.save_json(1, {})
    assert ckpt.latest_valid() is not None
    assert "cannot append event checkpoint_saved" in caplog.text


WRITER = """
import sys
from pathlib import Path
from hpcbridge.checkpoint import EventLog
log = EventLog(Path(sys.argv[1]), job_id=sys.argv[2], attempt=1)
for i in range(int(sys.argv[3])):
    log.emit("load", index=i, padding="x" * 3000)
"""


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    per_writer = 300
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{n}", str(per_writer)])
        for n in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    lines = (tmp_path / EVENTS_FILE).read_text().splitlines()
    assert len(lines) == 4 * per_writer
    seen: dict[str, list[int]] = {}
    for line in lines:
        event = json.loads(line)  # a torn line would not parse
        seen.setdefault(event["job_id"], []).append(event["index"])
    assert seen == {f"w{n}": list(range(per_writer)) for n in range(4)}


def test_emit_returns_the_event_even_without_a_file() -> None:
    event = EventLog(None, job_id=None, attempt=None).emit("x", a=1)
    assert event["type"] == "x" and event["a"] == 1 and event["job_id"] is None
