"""Spec fields account and qos: rendered for sbatch and slurmrestd, checked against the
user's associations (pure: sacctmgr's output as text), refused by the local backend."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from hpcbridge.backends import LaunchRequest
from hpcbridge.backends.local._backend import _unsupported_fields
from hpcbridge.backends.slurm import render_batch, rest_job, sbatch_argv
from hpcbridge.backends.slurm._assoc import check_assoc, parse_assoc
from hpcbridge.errors import SpecError
from hpcbridge.spec import JobSpec, load_spec_document

# sacctmgr -n -P show assoc user=alice format=account,qos (Slurm 22.05)
ASSOC = "physics|normal,high\nchem|normal\nroot|\n"


def make_spec(**fields: Any) -> JobSpec:
    document: dict[str, Any] = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "acct",
        "command": ["true"],
        "backend": "slurm",
        **fields,
    }
    return load_spec_document(document)


def _batch(spec: JobSpec) -> Any:
    request = LaunchRequest("jabc", 1, "tok", spec, {})
    return render_batch(request, log_dir=PurePosixPath("/l"), workdir="/w", default_partition=None)


def test_account_and_qos_reach_both_transports() -> None:
    job = _batch(make_spec(account="physics", qos="high"))
    argv = sbatch_argv(job)
    assert "--account=physics" in argv and "--qos=high" in argv
    body = rest_job(job)
    assert (body["account"], body["qos"]) == ("physics", "high")
    plain = _batch(make_spec())
    assert not any(a.startswith(("--account", "--qos")) for a in sbatch_argv(plain))
    assert "account" not in rest_job(plain) and "qos" not in rest_job(plain)


def test_an_account_name_slurm_cannot_take_is_refused() -> None:
    with pytest.raises(SpecError, match="account"):
        make_spec(account="a b;rm")


def test_associations_allow_or_refuse_naming_the_allowed_ones() -> None:
    allowed = parse_assoc(ASSOC)
    assert allowed == {
        "physics": frozenset({"normal", "high"}),
        "chem": frozenset({"normal"}),
        "root": frozenset(),
    }
    ok = make_spec(account="physics", qos="high")
    assert check_assoc(ok, allowed, user="alice", cluster="hpc1") == []
    (problem,) = check_assoc(make_spec(account="bio"), allowed, user="alice", cluster="hpc1")
    assert "may not use account 'bio'" in problem and "chem, physics, root" in problem
    (problem,) = check_assoc(
        make_spec(account="chem", qos="high"), allowed, user="alice", cluster="hpc1"
    )
    assert "account 'chem' may not use QOS 'high'" in problem and "use one of normal" in problem
    assert check_assoc(make_spec(qos="high"), allowed, user="alice", cluster="hpc1") == []


def test_the_local_backend_refuses_account_and_qos() -> None:
    spec = make_spec(account="physics", backend="local")
    assert any(p.startswith("account, qos:") for p in _unsupported_fields(spec))
