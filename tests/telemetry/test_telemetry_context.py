"""Structured logs carry the ids bound with job_log_context."""

from __future__ import annotations

import json

import pytest
import structlog

from hpcbridge.logs import configure_logging
from hpcbridge.telemetry import LOG_CONTEXT_KEYS, job_log_context


def test_log_lines_carry_job_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    log = structlog.get_logger("test")
    with job_log_context(job_id="j123", attempt=2, backend="local", native_id="abc"):
        log.info("submitted")
    with job_log_context(job_id="j456"):
        log.info("queued")
    log.info("idle")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["submitted", "queued", "idle"]
    assert {k: lines[0][k] for k in LOG_CONTEXT_KEYS} == {
        "job_id": "j123",
        "attempt": 2,
        "backend": "local",
        "native_id": "abc",
    }
    assert lines[1]["job_id"] == "j456" and "attempt" not in lines[1]
    assert "job_id" not in lines[2]
