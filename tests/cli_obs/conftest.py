"""Run ``hpcbridge`` in-process against the ``settings`` fixture's store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hpcbridge.cli import main
from hpcbridge.client import Client
from hpcbridge.config import Settings


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    monkeypatch.setenv("HPCBRIDGE_HOME", str(settings.home))
    monkeypatch.setenv("HPCBRIDGE_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    opened = Client(settings)
    yield opened
    opened.close()
