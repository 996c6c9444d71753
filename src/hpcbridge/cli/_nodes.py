"""``hpcbridge nodes``: a Slurm cluster's nodes and partitions; drain and resume nodes."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hpcbridge.backends.slurm import NodeRecord, PartitionRecord, SlurmBackend
from hpcbridge.cli import _render as render
from hpcbridge.cli._setup import local_service, open_client, usable_settings
from hpcbridge.logs import configure_logging

nodes_app = typer.Typer(
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Nodes of a Slurm cluster: state, features, GRES, CPU and memory use, drain reasons.",
)

# Piped output gets wide tables rather than Rich's 80-column default (as in _app).
out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)

ClusterOpt = Annotated[
    str | None,
    typer.Option("--cluster", help="Cluster name from the clusters file; default: the default."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
NodeArg = Annotated[str, typer.Argument(help="Node name, as Slurm knows it.")]


@contextmanager
def _backend() -> Iterator[SlurmBackend]:
    settings = usable_settings()
    configure_logging()
    backend = SlurmBackend(settings)
    try:
        yield backend
    finally:
        backend.close()


def nodes_table(nodes: list[NodeRecord]) -> Table:
    table = Table(box=None, pad_edge=False)
    for name in ("NODE", "STATE", "CPUS", "MEM_MB", "GRES", "FEATURES", "PARTITIONS", "REASON"):
        table.add_column(name, overflow="fold", no_wrap=name != "REASON")
    for node in nodes:
        state = node.summary
        style = "red" if node.state == "down" else "yellow" if node.drained else None
        table.add_row(
            node.name,
            f"[{style}]{state}[/]" if style else state,
            f"{node.cpus_alloc}/{node.cpus_total}",
            f"{node.mem_alloc_mb}/{node.mem_total_mb}",
            node.gres or "-",
            ",".join(node.features) or "-",
            ",".join(node.partitions) or "-",
            node.reason or "-",
        )
    return table


def partitions_table(partitions: list[PartitionRecord]) -> Table:
    table = Table(box=None, pad_edge=False)
    for name in ("PARTITION", "STATE", "NODES", "CPUS", "PENDING", "RUNNING", "MAX_TIME"):
        table.add_column(name, no_wrap=True)
    for part in partitions:
        table.add_row(
            part.name + ("*" if part.default else ""),
            part.state,
            str(len(part.nodes)),
            str(part.total_cpus),
            str(part.pending),
            str(part.running),
            render.seconds(part.max_time_s) if part.max_time_s else "unlimited",
        )
    return table


@nodes_app.callback(invoke_without_command=True)
def list_nodes(
    ctx: typer.Context, cluster: ClusterOpt = None, json_output: JsonOpt = False
) -> None:
    """List the nodes of a cluster (``hpcbridge nodes``)."""
    if ctx.invoked_subcommand is not None:
        return
    with _backend() as backend:
        nodes = backend.nodes(cluster)
    if json_output:
        out.print_json(render.dumps([dataclasses.asdict(n) for n in nodes]))
    else:
        out.print(nodes_table(nodes))


@nodes_app.command("partitions")
def list_partitions(cluster: ClusterOpt = None, json_output: JsonOpt = False) -> None:
    """Partitions with their queue depth (pending and running jobs)."""
    with _backend() as backend:
        partitions = backend.partitions(cluster)
    if json_output:
        out.print_json(render.dumps([dataclasses.asdict(p) for p in partitions]))
    else:
        out.print(partitions_table(partitions))


@nodes_app.command("drain")
def drain(
    node: NodeArg,
    reason: Annotated[str, typer.Option("--reason", help="Why; shown by sinfo and here.")],
    cluster: ClusterOpt = None,
) -> None:
    """Drain a node: running jobs finish, no new job starts there."""
    if not reason.strip():
        raise typer.BadParameter("give a reason, e.g. --reason 'ECC errors'", param_hint="--reason")
    with open_client() as client:  # through the service: the drain is audited
        service, me = local_service(client)
        service.drain(me, node, reason, cluster)
    out.print(f"{node}: draining ({reason})")


@nodes_app.command("resume")
def resume(node: NodeArg, cluster: ClusterOpt = None) -> None:
    """Return a drained or down node to service."""
    with open_client() as client:
        service, me = local_service(client)
        service.resume(me, node, cluster)
    out.print(f"{node}: resumed")
