"""The node-side cache step (hpcbridge.checkpoint.node_cache) on real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from hpcbridge.checkpoint.node_cache import REPORT, NodeCache, run


def _stage(data: Path, name: str, payload: bytes) -> dict[str, object]:
    path = data / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    return {"path": str(path), "source": "x", "size": len(payload), "digest": digest}


def _manifest(data: Path, entries: list[dict[str, object]]) -> Path:
    manifest = data / ".hpcbridge" / "inputs.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"version": 1, "kind": "inputs", "files": entries}))
    return manifest


def test_a_second_job_with_the_same_inputs_copies_nothing(tmp_path: Path) -> None:
    payload = os.urandom(50_000)
    cache_root = tmp_path / "nodecache" / "n1"
    first = _manifest(tmp_path / "a", [_stage(tmp_path / "a", "in.bin", payload)])
    report = run(first, NodeCache(cache_root, 1 << 30), "n1")
    assert report["bytes_copied"] == len(payload) and report["bytes_linked"] == 0
    second = _manifest(tmp_path / "b", [_stage(tmp_path / "b", "in.bin", payload)])
    report = run(second, NodeCache(cache_root, 1 << 30), "n1")
    assert report["bytes_copied"] == 0 and report["bytes_linked"] == len(payload)
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert report["holds"] == {digest: len(payload)}
    cached = cache_root / "sha256" / digest.partition(":")[2]
    # both jobs read the node's copy, unchanged
    assert os.path.samefile(tmp_path / "b" / "in.bin", cached)
    assert (tmp_path / "a" / "in.bin").read_bytes() == payload


def test_a_shared_copy_that_does_not_match_its_digest_is_not_cached(tmp_path: Path) -> None:
    entry = _stage(tmp_path / "a", "in.bin", b"staged")
    Path(str(entry["path"])).write_bytes(b"change")  # changed on shared storage after staging
    report = run(_manifest(tmp_path / "a", [entry]), NodeCache(tmp_path / "nc", 1 << 30), "n1")
    assert report["bytes_copied"] == 0 and report["holds"] == {}
    assert Path(str(entry["path"])).read_bytes() == b"change"  # verify_inputs reports it


def test_eviction_is_lru_and_never_takes_an_input_a_job_still_uses(tmp_path: Path) -> None:
    def ended_job(directory: str, entry: dict[str, object]) -> None:
        cache = NodeCache(tmp_path / "nc", 25_000)
        run(_manifest(tmp_path / directory, [entry]), cache, "n1")
        for fd in cache.in_use:  # the job ended
            os.close(fd)

    old = _stage(tmp_path / "a", "old.bin", os.urandom(10_000))
    used = _stage(tmp_path / "b", "used.bin", os.urandom(10_000))
    ended_job("a", old)
    os.unlink(str(old["path"]))  # that job's data directory is gone
    ended_job("b", used)  # still linked from its data directory
    new = _stage(tmp_path / "c", "new.bin", os.urandom(10_000))
    report = run(_manifest(tmp_path / "c", [new]), NodeCache(tmp_path / "nc", 25_000), "n1")
    assert report["evicted"] == 1
    assert set(report["holds"]) == {used["digest"], new["digest"]}


def test_a_locked_object_is_not_evicted(tmp_path: Path) -> None:
    holder = NodeCache(tmp_path / "nc", 1 << 30)
    entry = _stage(tmp_path / "a", "in.bin", os.urandom(10_000))
    run(_manifest(tmp_path / "a", [entry]), holder, "n1")
    os.unlink(str(entry["path"]))  # no other link: only the running job's lock keeps it
    assert NodeCache(tmp_path / "nc", 0).evict() == []
    for fd in holder.in_use:
        os.close(fd)
    assert len(NodeCache(tmp_path / "nc", 0).evict()) == 1


def test_the_wrapper_writes_its_report_and_runs_the_command(tmp_path: Path) -> None:
    entry = _stage(tmp_path / "a", "in.bin", b"x" * 1000)
    manifest = _manifest(tmp_path / "a", [entry])
    status = tmp_path / "status"
    env = {
        **os.environ,
        "SLURMD_NODENAME": "n7",
        "HPCBRIDGE_NODE_CACHE_DIR": str(tmp_path / "nc" / "{node}"),
        "HPCBRIDGE_NODE_CACHE_MAX_BYTES": "1000000",
    }
    argv = [sys.executable, "-m", "hpcbridge.checkpoint.node_cache", str(manifest), str(status)]
    done = subprocess.run(
        [*argv, "--", "cat", str(entry["path"])],
        check=False,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == b"x" * 1000, done.stderr
    report = json.loads((status / REPORT).read_text())
    assert report["node"] == "n7" and report["bytes_copied"] == 1000
    assert report["dir"] == str(tmp_path / "nc" / "n7")


def test_an_unusable_cache_directory_still_runs_the_command(tmp_path: Path) -> None:
    entry = _stage(tmp_path / "a", "in.bin", b"y")
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "HPCBRIDGE_NODE_CACHE_DIR": str(blocker / "{node}")}
    argv = [sys.executable, "-m", "hpcbridge.checkpoint.node_cache"]
    manifest = _manifest(tmp_path / "a", [entry])
    done = subprocess.run(
        [*argv, str(manifest), str(tmp_path / "s"), "--", "true"],
        check=False,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0 and b"node cache" in done.stderr
    assert "error" in json.loads((tmp_path / "s" / REPORT).read_text())


def test_a_damaged_node_copy_is_replaced_not_served(tmp_path: Path) -> None:
    payload = os.urandom(20_000)
    cache_root = tmp_path / "nc"
    entry = _stage(tmp_path / "a", "in.bin", payload)
    run(_manifest(tmp_path / "a", [entry]), NodeCache(cache_root, 1 << 30), "n1")
    cached = cache_root / "sha256" / str(entry["digest"]).partition(":")[2]
    os.unlink(str(entry["path"]))
    os.chmod(cached, 0o644)
    cached.write_bytes(b"rot" + payload[3:])  # the node's disk changed it
    again = _stage(tmp_path / "b", "in.bin", payload)
    report = run(_manifest(tmp_path / "b", [again]), NodeCache(cache_root, 1 << 30), "n1")
    assert report["bytes_copied"] == len(payload)
    assert (tmp_path / "b" / "in.bin").read_bytes() == payload
