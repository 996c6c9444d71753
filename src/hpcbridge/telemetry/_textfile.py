"""Metrics without ``serve``: embedded mode writes a node-exporter textfile or pushes to a
Prometheus Pushgateway.

The same ``StoreCollector`` as ``/metrics`` (the store's events folded incrementally, plus
the reconciler's own stats) in a private registry. ``after_cycle`` exports at most every
``interval_s`` while commands drive the reconciler; ``close`` exports what the last cycles
changed. A failed push or write is logged and retried at the next export: metrics never
fail a job command.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, push_to_gateway, write_to_textfile

from hpcbridge.errors import ConfigError
from hpcbridge.store import Store
from hpcbridge.telemetry._collector import StoreCollector
from hpcbridge.telemetry._stats import ReconcilerStats

log = structlog.get_logger(__name__)

PUSH_JOB = "hpcbridge"
DEFAULT_INTERVAL_S = 15.0
PUSH_TIMEOUT_S = 5.0


class MetricsExport:
    """Writes the metrics to ``textfile`` (atomically) and/or pushes them to ``pushgateway``."""

    def __init__(
        self,
        store: Store,
        *,
        textfile: Path | None = None,
        pushgateway: str | None = None,
        stats: ReconcilerStats | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        instance: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if textfile is not None:
            check_textfile(textfile)
        self.textfile = textfile
        self.pushgateway = pushgateway
        self.grouping_key = {"instance": instance or socket.gethostname()}
        self.interval_s = interval_s
        self._clock = clock
        self._collector = StoreCollector(store, stats=stats)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._collector)
        self._last: float | None = None
        self._pending = False

    def after_cycle(self) -> None:
        """A reconciler cycle ran: export when the last export is ``interval_s`` old."""
        self._pending = True
        now = self._clock()
        if self._last is None or now - self._last >= self.interval_s:
            self.export()

    def close(self) -> None:
        """Export what changed since the last export (nothing when no cycle ran)."""
        if self._pending:
            self.export()

    def export(self) -> None:
        self._last = self._clock()
        self._pending = False
        self._collector.refresh()
        if self.textfile is not None:
            try:
                # a temporary file next to it, renamed over it: readers never see half
                write_to_textfile(str(self.textfile), self.registry)
            except OSError as exc:
                log.warning("metrics_textfile_failed", path=str(self.textfile), error=str(exc))
        if self.pushgateway is not None:
            try:
                push_to_gateway(
                    self.pushgateway,
                    job=PUSH_JOB,
                    registry=self.registry,
                    grouping_key=self.grouping_key,
                    timeout=PUSH_TIMEOUT_S,
                )
            except OSError as exc:  # URLError and HTTPError are OSErrors
                log.warning("metrics_push_failed", url=self.pushgateway, error=str(exc))


def check_textfile(path: Path) -> None:
    """node-exporter reads ``*.prom`` files of a directory that must exist."""
    variable = "HPCBRIDGE_METRICS_TEXTFILE"
    if path.suffix != ".prom":
        raise ConfigError(
            f"{variable}={path} does not end in .prom; node-exporter's textfile collector "
            "reads only *.prom files, e.g. /var/lib/node_exporter/textfile/hpcbridge.prom"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"{variable}={path}: directory {path.parent} does not exist; create it or use "
            "node-exporter's --collector.textfile.directory"
        )
