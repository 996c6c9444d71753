"""A local job's inputs are left to writeback: after a machine restart, a copy that does not
match was torn by the crash (staged again, retried), not changed (checksum_mismatch)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hpcbridge.backends import Observation, Phase
from hpcbridge.checkpoint import verify_inputs
from hpcbridge.reconciler._stager import unverified_inputs
from hpcbridge.spec import JobSpec
from hpcbridge.staging import INPUTS, Retry, manifest_dir, stage_in
from hpcbridge.states import AttemptState, FailureClass
from hpcbridge.store import Attempt, JobId

pytestmark = pytest.mark.skipif(
    verify_inputs.boot_id() is None, reason="needs Linux's /proc/sys/kernel/random/boot_id"
)


def _staged(tmp_path: Path, make_spec: Callable[..., JobSpec], *, durable: bool) -> Path:
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "a.dat").write_bytes(b"a" * 1000)
    spec = make_spec(stage_in=[{"source": str(tmp_path / "source"), "dest": "in"}])
    data = tmp_path / "data"
    stage_in(spec, data, retry=Retry(attempts=1), durable=durable)
    (data / "in" / "a.dat").write_bytes(bytes(1000))  # same size, blocks lost
    return manifest_dir(data) / INPUTS


def _restarted(manifest: Path) -> None:
    """As if the machine had booted again since the stage."""
    text = manifest.read_text()
    boot = json.loads(text)["unsynced_boot"]
    manifest.write_text(text.replace(boot, "an-earlier-boot"))


def _attempt(status: Path) -> Attempt:
    return Attempt(
        JobId("j1"), 1, "t1", "local", AttemptState.RUNNING, 0.0, details={"dir": str(status)}
    )


def _check(manifest: Path, status: Path) -> int:
    """The job wrapper's check, as the node runs it."""
    argv = [sys.executable, "-m", "hpcbridge.checkpoint.verify_inputs", str(manifest)]
    return subprocess.run([*argv, str(status), "--", "true"], check=False).returncode


def test_a_copy_torn_before_a_restart_is_staged_again(
    tmp_path: Path, make_spec: Callable[..., JobSpec]
) -> None:
    manifest = _staged(tmp_path, make_spec, durable=False)
    assert json.loads(manifest.read_text())["unsynced_boot"] == verify_inputs.boot_id()
    _restarted(manifest)
    status = tmp_path / "status"
    assert _check(manifest, status) == verify_inputs.TORN_EXIT_CODE
    mark = (status / verify_inputs.MARK).read_text()
    assert "staging them again" in mark and "a.dat: checksum mismatch" in mark

    attempt = _attempt(status)
    seen = unverified_inputs(
        Observation(phase=Phase.FAILED, exit_code=verify_inputs.TORN_EXIT_CODE), attempt
    )
    assert seen.failure_class is FailureClass.STAGING_ERROR  # retried by default
    assert seen.reason is not None and "staging them again" in seen.reason


@pytest.mark.parametrize("why", ["same boot", "synced copies"])
def test_otherwise_a_copy_that_does_not_match_was_changed(
    tmp_path: Path, make_spec: Callable[..., JobSpec], why: str
) -> None:
    manifest = _staged(tmp_path, make_spec, durable=why == "synced copies")
    if why == "synced copies":
        assert "unsynced_boot" not in json.loads(manifest.read_text())
    status = tmp_path / "status"
    assert _check(manifest, status) == verify_inputs.EXIT_CODE
    assert "inputs changed after staging" in (status / verify_inputs.MARK).read_text()
    attempt = _attempt(status)
    seen = unverified_inputs(
        Observation(phase=Phase.FAILED, exit_code=verify_inputs.EXIT_CODE), attempt
    )
    assert seen.failure_class is FailureClass.CHECKSUM_MISMATCH
