"""Idempotent submission through the API under stress: 50 concurrent clients submit with
``Idempotency-Key`` through a loopback proxy that drops connections (before the request
reaches the server, or after it did but before the answer gets back), while the real
``hpcbridge serve`` process is SIGKILLed and started again on the same store. Afterwards
the store holds exactly one job per key, and every submission a client saw acknowledged
(a 2xx with a job id) is there under that id. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from hpcbridge.api._bootstrap import BOOTSTRAP_FILE
from tests.api._procs import hpcbridge_argv, hpcbridge_env, start, stop, wait_ready, wait_until
from tests.api.conftest import free_port
from tests.store.conftest import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]

CLIENTS = 50
KEYS_PER_CLIENT = 4
SHARING = 2  # clients that submit each key, at about the same time
DROP_BEFORE = 0.1  # share of connections closed before the request is forwarded
DROP_AFTER = 0.2  # ... closed after the server got the request, its answer thrown away
GIVE_UP = 0.1  # share of requests the client itself abandons after a few milliseconds


class DroppingProxy:
    """A loopback TCP proxy to ``upstream_port`` that closes some connections on purpose.

    A connection dropped "after" forwards the request and throws the server's answer
    away: the server acts, the client never hears of it and must retry."""

    def __init__(self, upstream_port: int, seed: int) -> None:
        self.upstream_port = upstream_port
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.dropped = Counter[str]()
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _fate(self) -> str:
        with self._lock:
            roll = self._random.random()
        if roll < DROP_BEFORE:
            return "before"
        return "after" if roll < DROP_BEFORE + DROP_AFTER else "pass"

    def _accept(self) -> None:
        while not self._closing:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(downstream,), daemon=True).start()

    def _serve(self, downstream: socket.socket) -> None:
        fate = self._fate()
        with self._lock:
            self.dropped[fate] += 1
        if fate == "before":
            downstream.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:  # the server is down: the client sees a closed connection
            downstream.close()
            return
        upstream.settimeout(60)
        downstream.settimeout(60)
        threading.Thread(target=_pump, args=(downstream, upstream), daemon=True).start()
        if fate == "after":
            with contextlib.suppress(OSError):
                upstream.recv(1)  # the server answered, so it has acted: lose the answer
            _close(upstream, downstream)
            return
        _pump(upstream, downstream)

    def close(self) -> None:
        self._closing = True
        self._listener.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    _close(source, target)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@dataclass
class Outcome:
    acked: dict[str, str] = field(default_factory=dict)  # key -> job id of every 2xx
    attempts: int = 0
    transport_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _document(key: str) -> dict[str, object]:
    return {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": f"stress-{key}",
        "project": "stress",
        "command": ["true"],
    }


def _submit_until_acked(url: str, token: str, key: str, outcome: Outcome, stop_at: float) -> None:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    # a fresh connection per request, so that the proxy decides each request's fate
    limits = httpx.Limits(max_keepalive_connections=0)
    impatience = random.Random(key)
    with httpx.Client(base_url=url, timeout=10, limits=limits) as http:
        while time.monotonic() < stop_at:
            with outcome.lock:
                outcome.attempts += 1
            timeout = 0.005 if impatience.random() < GIVE_UP else 10
            try:
                response = http.post(
                    "/api/v1/jobs", json=_document(key), headers=headers, timeout=timeout
                )
            except httpx.TransportError:
                with outcome.lock:
                    outcome.transport_errors += 1
                time.sleep(0.05)
                continue
            with outcome.lock:
                outcome.statuses[response.status_code] += 1
            if response.is_success:
                job_id = response.json()["job_id"]
                with outcome.lock:
                    earlier = outcome.acked.setdefault(key, job_id)
                    if earlier != job_id:
                        outcome.mismatches.append(f"{key}: {earlier} then {job_id}")
                return
            time.sleep(float(response.headers.get("Retry-After", "0.1")))


def _client(url: str, token: str, keys: list[str], outcome: Outcome, stop_at: float) -> None:
    for key in keys:
        _submit_until_acked(url, token, key, outcome, stop_at)
        # a second submission with an acknowledged key: the same job again
        _submit_until_acked(url, token, key, outcome, stop_at)


class Server:
    """``hpcbridge serve`` on a fixed port over one store; killed and started again."""

    def __init__(self, tmp_path: Path, database_url: str | None) -> None:
        self.home = tmp_path / "server-home"
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        self.env = hpcbridge_env(self.home) | {"HPCBRIDGE_LOCAL_CPUS": "2"}
        if database_url is not None:
            self.env["HPCBRIDGE_DATABASE_URL"] = database_url
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = hpcbridge_argv("serve", "--port", str(self.port))
        self.process = start(argv, self.log, self.env)
        wait_ready(f"{self.url}/healthz", self.process, self.log, timeout_s=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def token(self) -> str:
        token_file = self.home / BOOTSTRAP_FILE
        wait_until(token_file.exists, timeout_s=10, what="the bootstrap token", log=self.log)
        return token_file.read_text().strip()

    def database_url(self) -> str:
        return self.env.get("HPCBRIDGE_DATABASE_URL", f"sqlite:///{self.home / 'hpcbridge.db'}")


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, None)
    yield server
    if server.process is not None:
        stop(server.process)


@pytest.fixture
def postgres_served(tmp_path: Path, postgres_url: str) -> Iterator[Server]:
    server = Server(tmp_path, postgres_url)
    yield server
    if server.process is not None:
        stop(server.process)


def _stored_keys(database_url: str) -> dict[str, list[str]]:
    """Job ids per idempotency key, read from the store's table (top-level jobs only)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT idempotency_key, job_id FROM jobs WHERE parent_id IS NULL")
            ).all()
    finally:
        engine.dispose()
    found: dict[str, list[str]] = {}
    for key, job_id in rows:
        found.setdefault(str(key), []).append(str(job_id))
    return found


def _run_stress(server: Server, seed: int) -> None:
    server.start()
    token = server.token()
    proxy = DroppingProxy(server.port, seed)
    outcome = Outcome()
    groups = CLIENTS // SHARING  # client c submits the keys of group c % groups
    keys_of = [[f"k{seed}-{g}-{i}" for i in range(KEYS_PER_CLIENT)] for g in range(groups)]
    keys = [key for group in keys_of for key in group]
    stop_at = time.monotonic() + 240
    url = f"http://127.0.0.1:{proxy.port}"
    threads = [
        threading.Thread(
            target=_client,
            args=(url, token, keys_of[c % groups], outcome),
            kwargs={"stop_at": stop_at},
        )
        for c in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: len(outcome.acked) >= len(keys) // 3, stop_at)
        acked_before_kill = dict(outcome.acked)
        server.kill()  # mid-run: requests in flight, answers half-written
        time.sleep(0.5)  # clients meet a refused connection for a while
        server.start()
        for thread in threads:
            thread.join(max(stop_at - time.monotonic(), 1))
    finally:
        proxy.close()

    assert not any(t.is_alive() for t in threads), "clients still retrying at the deadline"
    assert set(outcome.acked) == set(keys), f"never acknowledged: {set(keys) - set(outcome.acked)}"
    assert not outcome.mismatches, outcome.mismatches
    assert outcome.transport_errors > 0 and proxy.dropped["after"] > 0  # the drops happened
    assert not [s for s in outcome.statuses if s >= 500], outcome.statuses
    stored = _stored_keys(server.database_url())
    assert set(stored) == set(keys), "jobs without a key, or keys that nobody submitted"
    duplicates = {k: ids for k, ids in stored.items() if len(ids) != 1}
    assert not duplicates, duplicates
    lost = {k: j for k, j in outcome.acked.items() if stored[k] != [j]}
    assert not lost, f"acknowledged, then not stored as acknowledged: {lost}"
    assert acked_before_kill.items() <= outcome.acked.items()
    # the audit chain written by concurrent requests and cut by the kill still verifies
    verified = httpx.get(
        f"{server.url}/api/v1/audit/verify", headers={"Authorization": f"Bearer {token}"}
    )
    assert verified.status_code == 200 and verified.json()["intact"], verified.text


def _wait(check: Callable[[], bool], stop_at: float) -> None:
    while not check():
        assert time.monotonic() < stop_at, "too few submissions acknowledged before the kill"
        time.sleep(0.1)


@pytest.mark.slow
def test_idempotent_submissions_survive_drops_and_a_sigkill_on_sqlite(
    sqlite_server: Server,
) -> None:
    _run_stress(sqlite_server, seed=10)


@pytest.mark.slow
def test_idempotent_submissions_survive_drops_and_a_sigkill_on_postgresql(
    postgres_served: Server,
) -> None:
    _run_stress(postgres_served, seed=11)
