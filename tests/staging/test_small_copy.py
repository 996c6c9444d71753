"""Small local files take a path of their own (raw descriptors, one read): same digest,
same progress, same refusal of a file that changed size since it was listed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hpcbridge.staging import Meter, Retry, StagingError, _transfer
from hpcbridge.staging._urls import locate

ONCE = Retry(attempts=1)


def _task(tmp_path: Path, data: bytes, listed: int | None = None) -> _transfer.FileTask:
    (tmp_path / "s.dat").write_bytes(data)
    size = len(data) if listed is None else listed
    return _transfer.FileTask(
        locate(str(tmp_path / "s.dat"), tmp_path), locate("d/x", tmp_path), size
    )


@pytest.mark.parametrize("length", [0, 1, 4096, _transfer.SMALL - 1])
def test_a_small_file_is_copied_hashed_and_counted(tmp_path: Path, length: int) -> None:
    data = os.urandom(length)
    meter = Meter()
    record, copied = _transfer.transfer(_task(tmp_path, data), "sha256", ONCE, meter)
    assert (tmp_path / "d" / "x").read_bytes() == data and copied == length == meter.done
    assert record.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert not (tmp_path / "d" / "x.part").exists()


@pytest.mark.parametrize("listed", [10, 3000])
def test_a_small_file_that_changed_size_since_it_was_listed_is_refused(
    tmp_path: Path, listed: int
) -> None:
    with pytest.raises(StagingError, match=f"of {listed}"):
        _transfer.transfer(_task(tmp_path, os.urandom(2000), listed), "sha256", ONCE)
    assert not (tmp_path / "d" / "x").exists()  # nothing under the final name


def test_a_part_left_by_an_earlier_try_is_started_afresh(tmp_path: Path) -> None:
    data = os.urandom(5000)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.part").write_bytes(b"junk" * 3000)  # longer, and wrong
    _transfer.transfer(_task(tmp_path, data), "sha256", ONCE)
    assert (tmp_path / "d" / "x").read_bytes() == data
