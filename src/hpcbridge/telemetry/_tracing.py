"""OpenTelemetry traces of reconcile cycles, scheduler calls and API requests.

Off by default, and then free: ``span()`` returns one shared no-op context without touching
OpenTelemetry, and attributes given as iterables (job ids) are never read. On
(``HPCBRIDGE_TRACING=true``, or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` in the environment), spans
go over OTLP/HTTP through a batch processor; the exporter reads the standard ``OTEL_*``
variables. The SDK is the optional extra ``hpcbridge[tracing]``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from hpcbridge.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

MAX_JOB_IDS = 100
"""Job ids on one span at most (a cycle over 10k jobs names the first 100)."""
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()
_state: dict[str, Any] = {"tracer": None, "provider": None}


def tracing_wanted(setting: bool | None, environ: Mapping[str, str]) -> bool:
    """The setting when given, else whether the environment names an OTLP endpoint."""
    if setting is not None:
        return setting
    return any(environ.get(name) for name in OTLP_ENDPOINT_VARIABLES)


def configure_tracing(
    enabled: bool, *, exporter: SpanExporter | None = None, batch: bool = True
) -> None:
    """Start (or stop) exporting spans; ``exporter`` replaces OTLP (tests: in memory)."""
    shutdown_tracing()
    if not enabled:
        return
    try:
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            SimpleSpanProcessor,
        )

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter()
    except ImportError as exc:
        raise ConfigError(
            "tracing is on (HPCBRIDGE_TRACING or OTEL_EXPORTER_OTLP_ENDPOINT) but the "
            f"OpenTelemetry SDK is not installed ({exc.name})",
            hint="pip install 'hpcbridge[tracing]', or set HPCBRIDGE_TRACING=false",
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": "hpcbridge"}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    # A private provider, not the global one: configured again, it is replaced cleanly.
    _state.update(provider=provider, tracer=provider.get_tracer("hpcbridge"))


def shutdown_tracing() -> None:
    """Flush what is buffered and stop; spans are no-ops afterwards."""
    provider = _state["provider"]
    _state.update(provider=None, tracer=None)
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    return _state["tracer"] is not None


def span(
    name: str, *, job_ids: Iterable[str] = (), **attributes: str | int | float | bool
) -> AbstractContextManager[Span | None]:
    """A span named ``name`` with ``hpcbridge.*`` attributes; one job id is
    ``hpcbridge.job_id``, several ``hpcbridge.job_ids`` (the first ``MAX_JOB_IDS``)."""
    tracer: Tracer | None = _state["tracer"]
    if tracer is None:
        return _NO_SPAN
    return _started(tracer, name, job_ids, attributes)


@contextlib.contextmanager
def _started(
    tracer: Tracer,
    name: str,
    job_ids: Iterable[str],
    attributes: Mapping[str, str | int | float | bool],
) -> Iterator[Span]:
    ids = list(itertools.islice(job_ids, MAX_JOB_IDS))
    named: dict[str, Any] = {f"hpcbridge.{key}": value for key, value in attributes.items()}
    if len(ids) == 1:
        named["hpcbridge.job_id"] = ids[0]
    elif ids:
        named["hpcbridge.job_ids"] = ids
    with tracer.start_as_current_span(name, attributes=named) as current:
        yield current


def annotate(current: Span | None, **attributes: str | int | float | bool) -> None:
    """Add ``hpcbridge.*`` attributes known only at the end (no-op without a span)."""
    if current is not None:
        current.set_attributes({f"hpcbridge.{key}": value for key, value in attributes.items()})


def annotate_current(
    *, job_ids: Iterable[str] = (), **attributes: str | int | float | bool
) -> None:
    """``annotate`` the span in progress (the cycle's, from inside it); free when off."""
    if _state["tracer"] is None:
        return
    from opentelemetry import trace  # noqa: PLC0415

    ids = list(itertools.islice(job_ids, MAX_JOB_IDS))
    if ids:
        trace.get_current_span().set_attribute("hpcbridge.job_ids", ids)
    annotate(trace.get_current_span(), **attributes)
