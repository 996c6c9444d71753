"""Fabric latency between a job's first two nodes (M7): a TCP ping-pong at job start.

The batch script runs this file's source with the nodes' own ``python3`` (``srun`` one
task on each of two nodes), so it uses nothing but the standard library and never imports
hpcbridge: compute nodes need not have it installed. Task 0 listens and publishes its
address in the status directory (shared storage); task 1 connects, times ``ROUNDS`` round
trips of a small message and appends one ``fabric_latency`` event to ``events.jsonl``,
which the control plane copies into its event log when the attempt ends.

Whatever goes wrong, the probe gives up quietly: it must never delay or fail the job.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROUNDS = 200
MESSAGE = b"x" * 64
WAIT_S = 10.0
EVENT = "fabric_latency"


def _address_file(status_dir: Path) -> Path:
    return status_dir / f"fabric-{os.environ.get('SLURM_JOB_ID', 'local')}.addr"


def serve(status_dir: Path, rounds: int = ROUNDS) -> None:
    """Task 0: echo ``rounds`` messages back to whoever connects first."""
    with socket.create_server(("", 0)) as server:
        server.settimeout(WAIT_S)
        port = server.getsockname()[1]
        target = _address_file(status_dir)
        partial = target.with_suffix(".partial")
        node = os.environ.get("SLURMD_NODENAME", socket.gethostname())
        partial.write_text(f"{socket.gethostname()} {port} {node}\n")
        os.replace(partial, target)  # the reader never sees half an address
        connection, _ = server.accept()
        with connection:
            connection.settimeout(WAIT_S)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(rounds):
                connection.sendall(_receive(connection, len(MESSAGE)))
    target.unlink(missing_ok=True)


def _receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the other node hung up")
        data += chunk
    return data


def _read_address(status_dir: Path) -> tuple[str, int, str]:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            host, port, node = _address_file(status_dir).read_text().split()
            return host, int(port), node
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise TimeoutError("task 0 never published its address") from None
            time.sleep(0.05)


def ping(status_dir: Path, rounds: int = ROUNDS) -> tuple[list[float], str]:
    """Task 1: seconds each round trip to task 0 took, and task 0's node."""
    host, port, node = _read_address(status_dir)
    with socket.create_connection((host, port), timeout=WAIT_S) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        for _ in range(rounds):
            started = time.perf_counter()
            connection.sendall(MESSAGE)
            _receive(connection, len(MESSAGE))
            rtts.append(time.perf_counter() - started)
    return rtts, node


def latency_event(rtts: list[float], nodes: list[str]) -> dict[str, object]:
    ordered = sorted(rtts)
    return {
        "type": EVENT,
        "time": time.time(),
        "rtt_s_p50": statistics.median(ordered),
        "rtt_s_p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "samples": len(ordered),
        "nodes": nodes,
    }


def _append_event(status_dir: Path, event: dict[str, object]) -> None:
    line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
    fd = os.open(status_dir / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: fabric_probe STATUS_DIR", file=sys.stderr)
        return 2
    status_dir = Path(argv[0])
    rank = os.environ.get("SLURM_PROCID", "0")
    try:
        status_dir.mkdir(parents=True, exist_ok=True)
        if rank == "0":
            serve(status_dir)
        else:
            rtts, first = ping(status_dir)
            nodes = [first, os.environ.get("SLURMD_NODENAME", socket.gethostname())]
            _append_event(status_dir, latency_event(rtts, nodes))
    except (OSError, TimeoutError) as exc:
        print(f"hpcbridge fabric probe skipped: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
