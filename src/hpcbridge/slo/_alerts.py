"""Multi-window, multi-burn-rate alerts with a low-volume guard (pure).

One alert per SLO and severity (``page``, ``ticket``). A window pair fires when

1. the error ratio over the long window exceeds ``burn_rate x (1 - objective)``;
2. so does the error ratio over the short window. When the short window holds no events
   (common at tens of jobs an hour) the latest short-window ratio seen within the long
   window is used instead, i.e. the short window ending at the latest rule evaluation
   that saw events: silence neither vetoes nor confirms, only new events do;
3. the low-volume guard holds: at least ``min_bad_events`` bad events in the long window.

The generated Prometheus rules compute the same three conditions (see ``_rules``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hpcbridge import runbooks
from hpcbridge.slo._duration import format_duration
from hpcbridge.slo._math import Samples, SampleSeries, as_series
from hpcbridge.slo._model import BurnWindow, SloDefinition

Severity = Literal["page", "ticket"]
Status = Literal["firing", "resolved"]
SLO_ALERT_NAME = "HpcbridgeSloBurnRate"
# Where runbook links point unless the runbook_url_base setting says otherwise.
DEFAULT_RUNBOOK_BASE = runbooks.DEFAULT_RUNBOOK_BASE


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """How one long/short window pair looked at ``now``."""

    severity: Severity
    long_s: int
    short_s: int
    burn_rate: float
    threshold: float
    long_ratio: float | None
    short_ratio: float | None
    short_end: float | None
    bad_in_long: float
    min_bad_events: float
    firing: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """An SLO (or job-failure) alert in the shape Alertmanager expects."""

    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None = None
    job_ids: tuple[str, ...] = ()
    windows: tuple[WindowVerdict, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def slo(self) -> str:
        return self.labels.get("slo", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


def fingerprint(labels: Mapping[str, str]) -> str:
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_labels(slo: SloDefinition, severity: Severity) -> dict[str, str]:
    return {
        "alertname": SLO_ALERT_NAME,
        "slo": slo.name,
        "severity": severity,
        "workload_class": slo.workload_class,
        "service": slo.service,
    }


def alert_annotations(
    slo: SloDefinition, severity: Severity, runbook_base: str = DEFAULT_RUNBOOK_BASE
) -> dict[str, str]:
    windows = slo.alerting.page if severity == "page" else slo.alerting.ticket
    pace = "fast" if severity == "page" else "steadily"
    conditions = "; or ".join(
        f"above {w.burn_rate:g}x budget ({threshold(slo, w):.4g}) over "
        f"{format_duration(w.long)} and over the latest {format_duration(w.short)} with "
        f"events, with at least {slo.alerting.guard(w):g} {bad_unit(slo)} in "
        f"{format_duration(w.long)}"
        for w in windows
    )
    what = slo.description.strip().rstrip(".") or f"SLO {slo.name}"
    return {
        "summary": f"SLO {slo.name} is burning its error budget {pace} ({severity})",
        "description": (
            f"{what}. Objective {slo.objective * 100:.10g}% over {format_duration(slo.window)}; "
            f"error ratio is {conditions}."
        ),
        "runbook_url": runbooks.runbook_url(slo.runbook, runbook_base),
    }


def bad_unit(slo: SloDefinition) -> str:
    """What the low-volume guard counts for this SLI: events, seconds or time slices."""
    if slo.sli.band is not None:
        return "bad time slices"
    ratio = slo.sli.ratio
    if ratio is not None and ratio.total.metric.endswith(("_seconds_total", "_seconds_sum")):
        return "bad seconds"
    return "bad events"


def threshold(slo: SloDefinition, window: BurnWindow) -> float:
    """The error ratio a window must exceed: ``burn_rate x (1 - objective)``.

    Rounded to 10 significant digits, exactly as written into the Prometheus rules.
    """
    return float(format(window.burn_rate * slo.error_budget, ".10g"))


def evaluate_window(
    slo: SloDefinition,
    window: BurnWindow,
    series: SampleSeries,
    now: float,
    *,
    severity: Severity = "page",
    eval_interval_s: float = 60.0,
) -> WindowVerdict:
    if eval_interval_s <= 0:
        raise ValueError(f"eval_interval_s must be positive, got {eval_interval_s!r}")
    limit = threshold(slo, window)
    long = series.totals(now - window.long, now)
    short_end = _latest_short_end(series, window, now, eval_interval_s)
    short = None if short_end is None else series.totals(short_end - window.short, short_end)
    short_ratio = None if short is None else short.error_ratio
    guard = slo.alerting.guard(window)
    firing = (
        long.error_ratio is not None
        and long.error_ratio > limit
        and short_ratio is not None
        and short_ratio > limit
        and long.bad >= guard
    )
    return WindowVerdict(
        severity,
        window.long,
        window.short,
        window.burn_rate,
        limit,
        long.error_ratio,
        short_ratio,
        short_end,
        long.bad,
        guard,
        firing,
    )


def _latest_short_end(
    series: SampleSeries, window: BurnWindow, now: float, step: float
) -> float | None:
    """End of the latest evaluation's short window (``now - k*step``) that held events.

    Mirrors ``last_over_time(short_ratio[long])`` over a recording evaluated every ``step``.
    """
    for t in series.times_before(now, now - window.long):
        k = max(0, int((now - t - window.short) // step) + 1)
        end = now - k * step
        if end < t:
            continue  # no evaluation saw this sample; try an earlier one
        return end if end >= now - window.long else None
    return None


def evaluate_alerts(
    slos: Sequence[SloDefinition],
    samples: Mapping[str, Samples],
    now: float,
    *,
    previous: Sequence[Alert] = (),
    eval_interval_s: float = 60.0,
    runbook_base: str = DEFAULT_RUNBOOK_BASE,
    max_job_ids: int = 10,
) -> list[Alert]:
    """Firing alerts at ``now``, plus ``resolved`` ones for alerts of ``previous`` that stopped.

    ``samples`` maps SLO names to their samples; ``previous`` is the last call's result.
    """
    options = _Options(
        eval_interval_s,
        runbook_base,
        max_job_ids,
        {a.fingerprint: a for a in previous if a.status == "firing"},
    )
    alerts: list[Alert] = []
    for slo in slos:
        series = as_series(samples.get(slo.name, ()))
        for severity in ("page", "ticket"):
            alert = _evaluate_one(slo, severity, series, now, options)
            if alert is not None:
                alerts.append(alert)
    return alerts


@dataclass(frozen=True, slots=True)
class _Options:
    eval_interval_s: float
    runbook_base: str
    max_job_ids: int
    earlier: Mapping[str, Alert]


def _evaluate_one(
    slo: SloDefinition, severity: Severity, series: SampleSeries, now: float, options: _Options
) -> Alert | None:
    windows = slo.alerting.page if severity == "page" else slo.alerting.ticket
    verdicts = tuple(
        evaluate_window(
            slo, w, series, now, severity=severity, eval_interval_s=options.eval_interval_s
        )
        for w in windows
    )
    labels = alert_labels(slo, severity)
    before = options.earlier.get(fingerprint(labels))
    firing = [v for v in verdicts if v.firing]
    if not firing:
        if before is None:
            return None
        return Alert(
            "resolved", labels, before.annotations, before.starts_at, now, before.job_ids, verdicts
        )
    longest = max(v.long_s for v in firing)
    return Alert(
        "firing",
        labels,
        alert_annotations(slo, severity, options.runbook_base),
        now if before is None else before.starts_at,
        None,
        recent_bad_job_ids(series, now - longest, now, options.max_job_ids),
        verdicts,
    )


def recent_bad_job_ids(
    series: SampleSeries, start: float, end: float, limit: int
) -> tuple[str, ...]:
    """Distinct job ids of the latest bad events in ``(start, end]``, newest first."""
    ids: list[str] = []
    for sample in reversed(series.samples(start, end)):
        if not sample.good and sample.job_id and sample.job_id not in ids:
            ids.append(sample.job_id)
            if len(ids) >= limit:
                break
    return tuple(ids)
