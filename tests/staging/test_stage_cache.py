"""The input cache: a second job with the same inputs copies nothing; eviction spares inputs
that a data directory still links, and a damaged object is never reused."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from hpcbridge.spec import JobSpec
from hpcbridge.staging import Cache, Retry, stage_in

FAST = Retry(attempts=2, initial_s=0.0)


def test_a_second_job_with_the_same_inputs_copies_nothing(
    tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "a.bin").write_bytes(os.urandom(1 << 20))
    (tree / "b.bin").write_bytes(os.urandom(4096))
    spec = make_spec(stage_in=[{"source": str(tree), "dest": "in"}])
    cache = Cache(tmp_path / "cache")
    first = stage_in(spec, tmp_path / "job1", retry=FAST, cache=cache)
    second = stage_in(spec, tmp_path / "job2", retry=FAST, cache=cache)
    assert first.bytes_copied == (1 << 20) + 4096
    assert second.bytes_copied == 0
    assert [f.digest for f in second.files] == [f.digest for f in first.files]
    assert (tmp_path / "job2" / "in" / "a.bin").read_bytes() == (tree / "a.bin").read_bytes()
    # A changed source (new mtime) is copied again, not served stale from the cache.
    (tree / "b.bin").write_bytes(b"new")
    third = stage_in(spec, tmp_path / "job3", retry=FAST, cache=cache)
    assert third.bytes_copied == 3
    assert (tmp_path / "job3" / "in" / "b.bin").read_bytes() == b"new"


def test_an_expected_checksum_finds_the_input_and_a_damaged_object_is_refetched(
    tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    payload = os.urandom(8192)
    source = tmp_path / "x.bin"
    source.write_bytes(payload)
    checksum = "sha256:" + hashlib.sha256(payload).hexdigest()
    spec = make_spec(stage_in=[{"source": str(source), "dest": "x.bin", "checksum": checksum}])
    cache = Cache(tmp_path / "cache")
    stage_in(spec, tmp_path / "job1", retry=FAST, cache=cache)
    assert stage_in(spec, tmp_path / "job2", retry=FAST, cache=cache).bytes_copied == 0
    obj = tmp_path / "cache" / "sha256" / checksum.partition(":")[2]
    for job in ("job1", "job2"):
        (tmp_path / job / "x.bin").unlink()  # no job links it any more
    os.chmod(obj, 0o644)
    obj.write_bytes(b"X" * 8192)  # damaged on disk, same size
    again = stage_in(spec, tmp_path / "job3", retry=FAST, cache=cache)
    assert again.bytes_copied == 8192
    assert (tmp_path / "job3" / "x.bin").read_bytes() == payload


def test_eviction_is_lru_and_spares_linked_inputs(
    tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    cache = Cache(tmp_path / "cache", max_bytes=10_000)
    for name in ("old", "mid", "new"):
        (tmp_path / name).write_bytes(os.urandom(6000))
        spec = make_spec(stage_in=[{"source": str(tmp_path / name), "dest": name}])
        stage_in(spec, tmp_path / f"job-{name}", retry=FAST, cache=cache)

    def objects() -> list[Path]:
        found = (tmp_path / "cache").rglob("*")
        return sorted(p for p in found if p.parent.name != "index" and p.is_file())

    assert len(objects()) == 3  # each still linked by its job's data directory: none goes
    (tmp_path / "job-old" / "old").unlink()  # that job is gone
    (tmp_path / "job-mid" / "mid").unlink()
    cache.evict()
    remaining = objects()
    assert len(remaining) == 1  # the least recently used unlinked went first, then the next
    assert remaining[0].stat().st_nlink == 2  # the one a job still links
