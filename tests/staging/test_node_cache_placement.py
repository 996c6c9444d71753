"""Placement by node-local cache: the pure choice, the script step and the holdings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.backends.slurm._locality import Holdings, node_cache_env, node_cache_step
from hpcbridge.backends.slurm._placement import choose_node, free_gpus
from hpcbridge.backends.slurm._records import NodeRecord

MB = 1_000_000


def node(
    name: str,
    state: str = "idle",
    flags: tuple[str, ...] = (),
    cpus_alloc: int = 0,
    partitions: tuple[str, ...] = ("batch",),
    gres: str = "",
    gres_used: str = "",
) -> NodeRecord:
    return NodeRecord(
        name=name,
        state=state,
        state_flags=flags,
        features=(),
        gres=gres,
        gres_used=gres_used,
        cpus_alloc=cpus_alloc,
        cpus_total=2,
        mem_alloc_mb=0,
        mem_total_mb=1000,
        reason="",
        partitions=partitions,
    )


INPUTS = {"sha256:a": 100 * MB, "sha256:b": 20 * MB, "sha256:c": 1 * MB}
NODES = [node("n1"), node("n2"), node("n3")]


def test_the_node_holding_the_inputs_is_chosen_with_its_numbers() -> None:
    holdings = {"n1": {"sha256:c": MB}, "n2": dict(INPUTS), "n3": {}}
    chosen = choose_node(INPUTS, holdings, NODES, partition="batch", cpus=1)
    assert chosen is not None and chosen.node == "n2"
    assert (chosen.inputs_held, chosen.inputs_total, chosen.bytes_held) == (3, 3, 121 * MB)
    assert chosen.sentence() == "placed on n2: holds 3 of 3 inputs, 121.0 of 121.0 MB"


def test_most_bytes_win_over_most_files() -> None:
    holdings = {"n1": {"sha256:b": 20 * MB, "sha256:c": MB}, "n3": {"sha256:a": 100 * MB}}
    chosen = choose_node(INPUTS, holdings, NODES, partition=None, cpus=1)
    assert chosen is not None and chosen.node == "n3" and chosen.inputs_held == 1


@pytest.mark.parametrize(
    ("holder", "partition", "cpus"),
    [
        (node("n2", "idle", ("DRAIN",)), "batch", 1),
        (node("n2", "drained"), "batch", 1),
        (node("n2", "allocated", cpus_alloc=2), "batch", 1),
        (node("n2", "mixed", cpus_alloc=1), "batch", 2),
        (node("n2", "idle", ("POWERED_DOWN",)), "batch", 1),
        (node("n2", "down", ("NOT_RESPONDING",)), "batch", 1),
        (node("n2", partitions=("spot",)), "batch", 1),
    ],
)
def test_a_holder_that_cannot_start_the_job_now_is_not_waited_for(
    holder: NodeRecord, partition: str, cpus: int
) -> None:
    holdings = {"n2": dict(INPUTS)}
    assert choose_node(INPUTS, holdings, [holder], partition=partition, cpus=cpus) is None


def test_a_mixed_node_with_room_is_usable() -> None:
    holdings = {"n2": dict(INPUTS)}
    chosen = choose_node(
        INPUTS, holdings, [node("n2", "mixed", cpus_alloc=1)], partition="batch", cpus=1
    )
    assert chosen is not None and chosen.node == "n2"


@pytest.mark.parametrize(
    ("gres", "gres_used", "free"),
    [
        ("gpu:fake:2", "gpu:fake:0(IDX:N/A)", {"fake": 2, "": 2}),  # 22.05, idle
        ("gpu:fake:2(S:0)", "gpu:fake:2(IDX:0-1)", {"fake": 0, "": 0}),
        ("gpu:2", "gpu:1", {"": 1}),
        (
            "gpu:a100:2,gpu:v100:2",
            "gpu:a100:1(IDX:0),gpu:v100:2(IDX:2,3)",
            {"a100": 1, "v100": 0, "": 1},
        ),
        ("gpu:fake:2", "gpu:1", {"fake": 1, "": 1}),  # a count without type: from any type
        ("", "", {"": 0}),
        ("gpu:fake:2,mps:100", "gpu:fake:0,mps:50", {"fake": 2, "": 2}),
    ],
)
def test_free_gpus_by_type(gres: str, gres_used: str, free: dict[str, int]) -> None:
    assert free_gpus(node("n1", gres=gres, gres_used=gres_used)) == free


GPU = "gpu:fake:2"


@pytest.mark.parametrize(
    ("used", "wanted", "placed"),
    [
        ("gpu:fake:0(IDX:N/A)", {"fake": 2}, True),
        ("gpu:fake:0(IDX:N/A)", {"": 2}, True),  # gpus: 2 without a type takes any
        ("gpu:fake:1(IDX:0)", {"fake": 1}, True),
        ("gpu:fake:1(IDX:0)", {"": 2}, False),
        ("gpu:fake:2(IDX:0-1)", {"fake": 1}, False),  # the holder's GPUs are all taken
        ("gpu:fake:0(IDX:N/A)", {"a100": 1}, False),  # no GPU of that type there
    ],
)
def test_a_gpu_job_goes_to_the_holder_only_with_its_gpus_free_now(
    used: str, wanted: dict[str, int], placed: bool
) -> None:
    holder = node("n2", "mixed", cpus_alloc=1, gres_used=used, gres=GPU)
    holdings = {"n2": dict(INPUTS)}
    chosen = choose_node(INPUTS, holdings, [holder], partition="batch", cpus=1, gpus=wanted)
    assert (chosen is not None) is placed


def test_an_array_is_placed_only_where_all_its_tasks_fit_at_once() -> None:
    holdings = {"n2": dict(INPUTS)}
    two = choose_node(INPUTS, holdings, [node("n2")], partition="batch", cpus=1, tasks=2)
    assert two is not None and two.tasks == 2
    assert two.sentence().endswith("; room there now for 2 array tasks at once")
    assert two.to_data()["tasks"] == 2
    assert choose_node(INPUTS, holdings, [node("n2")], partition="batch", cpus=1, tasks=3) is None
    gpus = {"fake": 1}
    holder = node("n2", gres_used="gpu:fake:1(IDX:0)", gres=GPU)
    assert choose_node(INPUTS, holdings, [holder], partition=None, cpus=1, gpus=gpus) is not None
    two_gpus = choose_node(INPUTS, holdings, [holder], partition=None, cpus=1, gpus=gpus, tasks=2)
    assert two_gpus is None  # two tasks need two free GPUs


def test_a_node_holding_less_than_half_the_bytes_is_not_pinned() -> None:
    holdings = {"n1": {"sha256:b": 20 * MB, "sha256:c": MB}}
    assert choose_node(INPUTS, holdings, NODES, partition="batch", cpus=1) is None
    assert choose_node({}, holdings, NODES, partition="batch", cpus=1) is None


def test_the_step_renders_only_for_single_node_jobs_with_inputs_and_a_cache() -> None:
    env = node_cache_env("/scratch/{node}", 1.5, 1)
    assert env == {
        "HPCBRIDGE_NODE_CACHE_DIR": "/scratch/{node}",
        "HPCBRIDGE_NODE_CACHE_MAX_BYTES": str(int(1.5 * (1 << 30))),
    }
    assert node_cache_env("/scratch/{node}", 1, 2) == {}
    assert node_cache_env(None, 1, 1) == {}
    assert node_cache_step(env) == []  # no staged inputs
    (line,) = node_cache_step({**env, "HPCBRIDGE_INPUT_MANIFEST": "/d/inputs.json"})
    assert "-m hpcbridge.checkpoint.node_cache" in line and line.endswith('-- "$@"')


def test_holdings_keep_each_nodes_newest_report(tmp_path: Path) -> None:
    holdings = Holdings(tmp_path / "slurm" / "lab.node_cache.json")
    holdings.learn({"node": "n1", "holds": {"sha256:a": 1}, "at": 10.0})
    holdings.learn({"node": "n1", "holds": {}, "at": 5.0})  # older: ignored
    holdings.learn({"node": "n2", "error": "unwritable", "at": 11.0})  # nothing held known
    holdings.learn({"node": "n3", "holds": {"sha256:b": 2}, "at": 12.0})
    again = Holdings(tmp_path / "slurm" / "lab.node_cache.json")  # another process
    assert again.read() == {"n1": {"sha256:a": 1}, "n3": {"sha256:b": 2}}
