"""OpenTelemetry spans: a cycle that submits a job traces the cycle and the scheduler calls
with the job's id; with tracing off, nothing is recorded and ``span`` is a shared no-op."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.errors import ConfigError
from hpcbridge.spec import JobSpec
from hpcbridge.telemetry import (
    configure_tracing,
    shutdown_tracing,
    span,
    tracing_enabled,
    tracing_wanted,
)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    configure_tracing(True, exporter=memory, batch=False)
    yield memory
    shutdown_tracing()


def test_a_cycle_that_submits_a_job_traces_it_by_id(
    exporter: InMemorySpanExporter, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    client = Client(settings)
    try:
        job = client.submit(make_spec(command=["sleep", "30"]))
        client.reconcile_once()
        client.reconcile_once()  # the next cycle polls the running attempt
        client.cancel(job.job_id)
        client.wait([job.job_id], timeout_s=30)
    finally:
        client.close()
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[dict[str, object]]] = {}
    for finished in spans:
        by_name.setdefault(finished.name, []).append(dict(finished.attributes or {}))

    submit = by_name["hpcbridge.backend.submit"][0]
    assert submit["hpcbridge.job_id"] == job.job_id
    assert (submit["hpcbridge.backend"], submit["hpcbridge.attempt"]) == ("local", 1)
    cycles = by_name["hpcbridge.reconcile_cycle"]
    first = cycles[0]
    assert first["hpcbridge.job_ids"] == (job.job_id,)
    assert (first["hpcbridge.active_jobs"], first["hpcbridge.submitted"]) == (1, 1)
    assert any(p["hpcbridge.job_id"] == job.job_id for p in by_name["hpcbridge.backend.poll"])
    assert by_name["hpcbridge.backend.kill"][0]["hpcbridge.job_id"] == job.job_id
    # scheduler calls made inside a cycle are its children
    cycle_ids = {s.context.span_id for s in spans if s.name == "hpcbridge.reconcile_cycle"}
    polls = [s for s in spans if s.name == "hpcbridge.backend.poll"]
    assert all(p.parent is not None and p.parent.span_id in cycle_ids for p in polls)


def test_off_by_default_and_free() -> None:
    shutdown_tracing()
    assert not tracing_enabled()
    first, second = span("a", job_ids=iter(["x"])), span("b", backend="local")
    assert first is second  # one shared no-op context, nothing allocated per call
    with first as current:
        assert current is None


def test_on_when_set_or_when_an_otlp_endpoint_is_configured() -> None:
    assert not tracing_wanted(None, {})
    assert tracing_wanted(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing_wanted(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing_wanted(True, {})


def test_many_job_ids_are_capped() -> None:
    memory = InMemorySpanExporter()
    configure_tracing(True, exporter=memory, batch=False)
    try:
        with span("many", job_ids=(f"j{i}" for i in range(1000))):
            pass
    finally:
        shutdown_tracing()
    (finished,) = memory.get_finished_spans()
    assert len(finished.attributes["hpcbridge.job_ids"]) == 100  # type: ignore[arg-type,index]


def test_the_otlp_exporter_is_built_when_tracing_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never reached
    configure_tracing(True)
    assert tracing_enabled()
    shutdown_tracing()
    assert not tracing_enabled()


def test_missing_sdk_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins  # noqa: PLC0415

    real_import = builtins.__import__

    def without_sdk(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("opentelemetry.sdk"):
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", without_sdk)
    with pytest.raises(ConfigError, match=r"hpcbridge\[tracing\]"):
        configure_tracing(True)


def test_submissions_from_the_thread_pool_are_children_of_the_cycle(
    exporter: InMemorySpanExporter, settings: Settings, make_spec: Callable[..., JobSpec]
) -> None:
    client = Client(settings)
    try:
        # as a batch scheduler's backend does: several submissions at once, in threads
        client.backends["local"].parallel_submissions = 2  # type: ignore[attr-defined]
        jobs = [client.submit(make_spec(name=f"j{i}")) for i in range(2)]
        client.reconcile_once()
        client.wait([job.job_id for job in jobs], timeout_s=30)
    finally:
        client.close()
    spans = exporter.get_finished_spans()
    (cycle,) = [s for s in spans if s.name == "hpcbridge.reconcile_cycle"][:1]
    submits = [s for s in spans if s.name == "hpcbridge.backend.submit"]
    assert {dict(s.attributes or {})["hpcbridge.job_id"] for s in submits} == {
        job.job_id for job in jobs
    }
    assert all(s.parent is not None and s.parent.span_id == cycle.context.span_id for s in submits)
