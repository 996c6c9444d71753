"""Spec fields ``reservation``, ``sbatch_args`` and ``priority`` on Slurm: rendered for both
transports, and refused where they clash with what hpcbridge sets. Pure: no cluster."""

from __future__ import annotations

import pytest

from hpcbridge.backends.slurm import rest_job, sbatch_argv
from hpcbridge.backends.slurm._passthrough import MANAGED, check_passthrough
from hpcbridge.errors import SpecError

from .test_slurm_render import batch, make_spec


def test_rendered_for_the_cli() -> None:
    spec = make_spec(
        reservation="maint",
        priority=-5,
        sbatch_args=["--mail-type=END", "--exclusive"],
    )
    argv = sbatch_argv(batch(spec))
    assert "--reservation=maint" in argv and "--nice=5" in argv
    assert argv[-2:] == ["--mail-type=END", "--exclusive"]


def test_rendered_for_rest() -> None:
    body = rest_job(batch(make_spec(reservation="maint", priority=-5)))
    assert (body["reservation"], body["nice"]) == ("maint", 5)


def test_no_priority_no_nice() -> None:
    assert not any(a.startswith("--nice") for a in sbatch_argv(batch(make_spec())))
    assert "nice" not in rest_job(batch(make_spec()))


@pytest.mark.parametrize(
    ("arg", "field"),
    [
        ("--output=/tmp/x", "log_dir"),
        ("--array=0-3", "instead use array"),
        ("--requeue", "instead use checkpoint"),
        ("--job-name=x", "instead use name"),
        ("--partition=debug", "instead use placement.partition"),
        ("--time=10", "instead use resources.walltime"),
        ("--nice=10", "instead use priority"),
        ("--reservation=r", "instead use reservation"),
    ],
)
def test_clashes_name_the_field_to_use(arg: str, field: str) -> None:
    problems = check_passthrough(make_spec(sbatch_args=[arg]), "c", "cli", negative_nice=False)
    assert len(problems) == 1
    option = arg.split("=", maxsplit=1)[0]
    assert problems[0].startswith(f"sbatch_args: {option} is set by hpcbridge")
    assert field in problems[0]


def test_every_managed_option_is_refused() -> None:
    for option in MANAGED:
        assert check_passthrough(make_spec(sbatch_args=[option]), "c", "cli", False), option


def test_other_options_pass_on_the_cli_but_not_over_rest() -> None:
    spec = make_spec(sbatch_args=["--mail-type=END"])
    assert check_passthrough(spec, "c", "cli", negative_nice=False) == []
    assert check_passthrough(spec, "c", "rest", negative_nice=False) == [
        "sbatch_args: cluster c uses slurmrestd, which takes no sbatch options; remove them "
        "or use transport: cli"
    ]


def test_a_positive_priority_needs_an_operator() -> None:
    spec = make_spec(priority=5)
    problems = check_passthrough(spec, "c", "cli", negative_nice=False)
    assert problems == [
        "priority: 5 means sbatch --nice=-5, and only a Slurm operator or administrator may "
        "lower a job's nice; set negative_nice: true for cluster c if hpcbridge submits as one, "
        "or use priority <= 0 (or a qos)"
    ]
    assert check_passthrough(spec, "c", "cli", negative_nice=True) == []
    assert "--nice=-5" in sbatch_argv(batch(spec))
    assert check_passthrough(make_spec(priority=-5), "c", "cli", negative_nice=False) == []


@pytest.mark.parametrize("arg", ["-w n1", "--", "exclusive", "--bad option"])
def test_sbatch_args_are_long_options(arg: str) -> None:
    with pytest.raises(SpecError, match="is not one long option"):
        make_spec(sbatch_args=[arg])
