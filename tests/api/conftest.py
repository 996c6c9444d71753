"""A real uvicorn server on 127.0.0.1 around a Runtime, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hpcbridge.api import Runtime, ServeOptions, create_app
from hpcbridge.config import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    runtime: Runtime
    http: httpx.Client


def serve(runtime: Runtime, *, start: bool = True, app: FastAPI | None = None) -> Iterator[Served]:
    """Run ``app`` (default ``create_app(runtime)``) under uvicorn until the generator is
    closed."""
    port = free_port()
    app = app or create_app(runtime, start=start)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Served(runtime, http)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    yield from serve(Runtime(settings, ServeOptions()))


def wait_for(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
