"""Structured JSON logs (structlog) that always carry job id and attempt where known."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "WARNING") -> None:
    """JSON lines on stderr; tracebacks as plain text, never with local variables."""
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
