"""Preflight (``_preflight``): a spec held against a cluster's facts, built from the golden
outputs of the test cluster. Pure: no cluster needed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hpcbridge.backends.slurm._parse import parse_nodes_json, parse_scontrol_partitions
from hpcbridge.backends.slurm._preflight import (
    ClusterFacts,
    collect,
    gpus_of,
    parse_rest_licences,
    parse_scontrol_licences,
    parse_test_only,
    refusals,
)
from hpcbridge.spec import JobSpec, load_spec_document

GOLDEN = Path(__file__).parent / "golden"
LICENCES = "LicenseName=fluent Total=4 Used=0 Free=4 Reserved=0 Remote=no\n"


@pytest.fixture(scope="module")
def facts() -> ClusterFacts:
    return collect(
        "test-cli",
        parse_scontrol_partitions((GOLDEN / "scontrol_show_partition.txt").read_text()),
        parse_nodes_json((GOLDEN / "sinfo_drain.json").read_text()),
        parse_scontrol_licences(LICENCES),
        now=100.0,
    )


def spec(**fields: Any) -> JobSpec:
    document = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "pf",
        "project": "p",
        "backend": "slurm",
        "command": ["true"],
    }
    return load_spec_document(document | fields)


def test_facts_of_the_test_cluster(facts: ClusterFacts) -> None:
    assert [p.name for p in facts.partitions] == ["batch", "spot", "prio", "cloud"]
    n3 = next(n for n in facts.nodes if n.name == "n3")
    assert (n3.cpus, n3.mem_mb, dict(n3.gpus)) == (2, 4000, {"fake": 2})
    assert "bigmem" in n3.features
    assert facts.licences == {"fluent": 4}
    assert ClusterFacts.from_json(facts.to_json()) == facts


def test_a_spec_the_cluster_can_run_passes(facts: ClusterFacts) -> None:
    fits = spec(
        resources={"nodes": 3, "gpus": 2, "gpu_type": "fake", "mem": "4000M"},
        placement={"features": ["static"]},
        licences={"fluent": 4},
    )
    assert refusals(fits, "batch", facts) == []
    assert refusals(spec(placement={"features": ["bigmem"]}), None, facts) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"placement": {"partition": "gpux"}},
            "placement.partition: partition 'gpux' does not exist on cluster test-cli; "
            "partitions: batch, spot, prio, cloud",
        ),
        (
            {"placement": {"features": ["nope"]}},
            "placement.features: no node of partition 'batch' on cluster test-cli has feature "
            "'nope'; features there: bigmem, static",
        ),
        (
            {"resources": {"gpus": 5}},
            "resources.gpus: 5 GPUs per node asked, but the nodes of partition 'batch' on "
            "cluster test-cli have at most 2",
        ),
        (
            {"resources": {"gpus": 1, "gpu_type": "a100"}},
            "resources.gpu_type: no GPU of type 'a100' in partition 'batch' on cluster "
            "test-cli; types there: fake",
        ),
        (
            {"licences": {"fluent": 9}},
            "licences: 9 'fluent' licences asked, but cluster test-cli has 4 in all",
        ),
        (
            {"licences": {"abaqus": 1}},
            "licences: licence 'abaqus' does not exist on cluster test-cli; licences: fluent (4)",
        ),
        (
            {"resources": {"mem": "9G"}},
            "resources.mem: 9216 MB per node asked, but the nodes of partition 'batch' on "
            "cluster test-cli have at most 4000 MB",
        ),
        (
            {"resources": {"tasks_per_node": 2, "cpus_per_task": 2}},
            "resources: 4 CPUs per node asked (tasks_per_node x cpus_per_task), but the nodes "
            "of partition 'batch' on cluster test-cli have at most 2",
        ),
        (
            {"resources": {"nodes": 2}, "placement": {"features": ["bigmem"]}},
            "resources.nodes: 2 nodes asked, but partition 'batch' on cluster test-cli has 1 "
            "that fit (n3)",
        ),
    ],
)
def test_refusals_name_what_exists(
    facts: ClusterFacts, fields: dict[str, Any], expected: str
) -> None:
    assert refusals(spec(**fields), "batch", facts) == [expected]


def test_the_time_limit_of_the_partition(facts: ClusterFacts) -> None:
    limited = dataclasses.replace(
        facts,
        partitions=tuple(
            dataclasses.replace(p, max_time_s=3600.0) if p.name == "batch" else p
            for p in facts.partitions
        ),
    )
    assert refusals(spec(resources={"walltime": "2h"}), "batch", limited) == [
        "resources.walltime: 120 min asked, partition 'batch' on cluster test-cli allows at "
        "most 60 min"
    ]
    assert refusals(spec(resources={"walltime": "1h"}), "batch", limited) == []


def test_the_clusters_default_partition_is_checked(facts: ClusterFacts) -> None:
    assert refusals(spec(resources={"gpus": 3}), None, facts)[0].startswith(
        "resources.gpus: 3 GPUs per node asked, but the nodes of partition 'batch'"
    )


def test_gpus_of() -> None:
    assert gpus_of("gpu:fake:2(S:0)") == {"fake": 2}
    assert gpus_of("gpu:2,gpu:a100:1,mps:100") == {"": 2, "a100": 1}
    assert gpus_of("") == {}
    assert gpus_of("gpu:fake:2(IDX:0,2),gpu:tesla:1(IDX:N/A)") == {"fake": 2, "tesla": 1}


def test_licences() -> None:
    assert parse_scontrol_licences(LICENCES + "garbage\n") == {"fluent": 4}
    rest = {"licenses": [{"LicenseName": "fluent", "Total": 4, "Used": 0}]}
    assert parse_rest_licences(rest) == {"fluent": 4}
    assert parse_rest_licences({"licenses": [{"name": "ansys", "total": 2}]}) == {"ansys": 2}


def test_parse_test_only() -> None:
    said = (
        "sbatch: Job 1537 to start at 2026-12-06T01:55:51 using 1 processors on nodes n1 in "
        "partition batch\n"
    )
    assert parse_test_only(said) == "2026-12-06 01:55:51 on n1 (1 CPU)"
    many = "sbatch: Job 9 to start at 2026-12-06T02:00:00 using 4 processors on nodes n[1-2] in x"
    assert parse_test_only(many) == "2026-12-06 02:00:00 on n[1-2] (4 CPUs)"
    # 22.05 with SLURM_TIME_FORMAT=%s: not a time at all
    nonsense = "sbatch: Job 1984 to start at 4210864471040 using 1 processors on nodes n1 in x"
    assert parse_test_only(nonsense) is None
    assert parse_test_only("allocation failure: Invalid partition name specified") is None


def test_a_partition_whose_nodes_are_out_of_sight_is_left_to_sbatch(facts: ClusterFacts) -> None:
    hidden = dataclasses.replace(facts, nodes=())  # PrivateData=nodes: sinfo shows none
    assert (
        refusals(spec(placement={"features": ["bigmem"]}, resources={"gpus": 9}), "batch", hidden)
        == []
    )
    assert refusals(spec(licences={"fluent": 9}), "batch", hidden)[0].startswith("licences: 9")
