"""The SLO file model (``apiVersion: hpcbridge/v1``, ``kind: SLOList``), OpenSLO-like.

Validated with pydantic v2 and ``extra="forbid"``; every check says which field is wrong
and how to fix it. Selectors may only name series of the metric contract in ``_metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from hpcbridge.slo._duration import format_duration, parse_duration_s
from hpcbridge.slo._metrics import (
    HISTOGRAM_BUCKETS,
    LABEL_VALUES,
    METRIC_LABELS,
    MetricKind,
    counter_series,
    metrics_of_kind,
)

API_VERSION = "hpcbridge/v1"
KIND = "SLOList"
ANY_CLASS = "*"

DurationS = Annotated[
    int, BeforeValidator(parse_duration_s), PlainSerializer(format_duration, return_type=str)
]
_SLO_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_RUNBOOK = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _as_values(value: object) -> object:
    if isinstance(value, str):
        return (value,)
    return value


LabelValues = Annotated[
    tuple[str, ...], BeforeValidator(_as_values), AfterValidator(lambda v: tuple(sorted(set(v))))
]
"""One value or a list of values, kept sorted and unique so equal selectors compare equal."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _LabelFilter(_Model):
    """``where``: each label must take one of the values; ``where_not``: none of them.

    A label the series does not carry counts as the empty string, as in PromQL.
    """

    where: dict[str, LabelValues] = Field(default_factory=dict)
    where_not: dict[str, LabelValues] = Field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for label, values in self.where.items():
            if labels.get(label, "") not in values:
                return False
        return all(labels.get(label, "") not in values for label, values in self.where_not.items())

    def _check_labels(self, metric: str, allowed: tuple[str, ...]) -> None:
        for field, filters in (("where", self.where), ("where_not", self.where_not)):
            for label, values in filters.items():
                if label == "workload_class":
                    raise ValueError(
                        f"{field}.workload_class: select the class with the SLO's "
                        "workload_class field instead"
                    )
                if label not in allowed:
                    raise ValueError(
                        f"{field}.{label}: {metric} has no label {label!r}; "
                        f"its labels are: {', '.join(allowed)}"
                    )
                if not values:
                    raise ValueError(f"{field}.{label}: give at least one value")
                closed = LABEL_VALUES.get(label)
                bad = [v for v in values if closed is not None and v not in closed]
                if closed is not None and bad:
                    raise ValueError(
                        f"{field}.{label}: unknown value(s) {', '.join(map(repr, bad))}; "
                        f"valid values are: {', '.join(repr(v) for v in sorted(closed))}"
                    )


class Selector(_LabelFilter):
    """Events counted from one counter series (a counter, or a histogram's _count/_sum)."""

    metric: str

    @model_validator(mode="after")
    def _known_series(self) -> Selector:
        series = counter_series()
        if self.metric not in series:
            raise ValueError(
                f"metric: {self.metric!r} is not a counter series of hpcbridge; "
                f"use one of: {', '.join(sorted(series))}"
            )
        self._check_labels(self.metric, series[self.metric])
        return self


class RatioSli(_Model):
    """Error ratio = bad / total, or 1 - good / total, summed over the window."""

    total: Selector
    good: Selector | None = None
    bad: Selector | None = None

    @model_validator(mode="after")
    def _one_of_good_bad(self) -> RatioSli:
        if (self.good is None) == (self.bad is None):
            raise ValueError("set exactly one of good or bad next to total")
        return self


class ThresholdSli(_LabelFilter):
    """Latency SLI on a histogram: an observation is good when it is at most ``le``."""

    metric: str
    le: float = Field(gt=0)

    @model_validator(mode="after")
    def _known_bucket(self) -> ThresholdSli:
        histograms = metrics_of_kind(MetricKind.HISTOGRAM)
        if self.metric not in histograms:
            raise ValueError(
                f"metric: {self.metric!r} is not a histogram of hpcbridge; "
                f"use one of: {', '.join(histograms)}"
            )
        buckets = HISTOGRAM_BUCKETS.get(self.metric)
        if buckets is not None and self.le not in buckets:
            raise ValueError(
                f"le: {self.le:g} is not a bucket bound of {self.metric}; "
                f"use one of: {', '.join(f'{b:g}' for b in buckets)}"
            )
        self._check_labels(self.metric, METRIC_LABELS[self.metric])
        return self


class BandSli(_LabelFilter):
    """Time-slice SLI on a gauge: a slice is good when ``min <= value <= max``.

    Each gauge sample (each rule evaluation in Prometheus) is one event.
    """

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> BandSli:
        gauges = metrics_of_kind(MetricKind.GAUGE)
        if self.metric not in gauges:
            raise ValueError(
                f"metric: {self.metric!r} is not a gauge of hpcbridge; use one of: "
                f"{', '.join(gauges)}"
            )
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}; swap them")
        self._check_labels(self.metric, METRIC_LABELS[self.metric])
        return self

    def contains(self, value: float) -> bool:
        low_ok = self.min is None or value >= self.min
        return low_ok and (self.max is None or value <= self.max)


class Sli(_Model):
    ratio: RatioSli | None = None
    threshold: ThresholdSli | None = None
    band: BandSli | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Sli:
        if sum(x is not None for x in (self.ratio, self.threshold, self.band)) != 1:
            raise ValueError("set exactly one of ratio, threshold or band")
        return self


class BurnWindow(_Model):
    """Alert when the error ratio exceeds ``burn_rate`` x budget over both windows."""

    long: DurationS
    short: DurationS
    burn_rate: float = Field(gt=0)
    min_bad_events: float | None = Field(
        default=None, ge=0, description="Overrides alerting.min_bad_events for this window."
    )

    @model_validator(mode="after")
    def _short_below_long(self) -> BurnWindow:
        if self.short >= self.long:
            raise ValueError(
                f"short ({format_duration(self.short)}) must be shorter than long "
                f"({format_duration(self.long)}); the workbook uses long/12"
            )
        return self


PAGE_WINDOWS = (
    BurnWindow(long=3600, short=300, burn_rate=14.4),
    BurnWindow(long=6 * 3600, short=30 * 60, burn_rate=6.0),
)
TICKET_WINDOWS = (BurnWindow(long=3 * 86400, short=6 * 3600, burn_rate=1.0),)


class Alerting(_Model):
    page: tuple[BurnWindow, ...] = PAGE_WINDOWS
    ticket: tuple[BurnWindow, ...] = TICKET_WINDOWS
    min_bad_events: float = Field(
        default=3, ge=0, description="Low-volume guard: bad events needed in the long window."
    )

    def windows(self) -> list[tuple[Literal["page", "ticket"], int, BurnWindow]]:
        """(severity, index, window) for every configured window."""
        out: list[tuple[Literal["page", "ticket"], int, BurnWindow]] = []
        out += [("page", i, w) for i, w in enumerate(self.page)]
        out += [("ticket", i, w) for i, w in enumerate(self.ticket)]
        return out

    def guard(self, window: BurnWindow) -> float:
        return self.min_bad_events if window.min_bad_events is None else window.min_bad_events


class SloDefinition(_Model):
    name: str = Field(description="Lower-case letters, digits and '-'; unique in the file.")
    service: str = Field(default="hpcbridge", min_length=1)
    description: str = ""
    workload_class: str = Field(default=ANY_CLASS, description="One workload class or '*'.")
    sli: Sli
    objective: float = Field(gt=0, lt=1, description="Target good fraction, e.g. 0.99.")
    window: DurationS = Field(default=30 * 86400, description="Compliance window, e.g. 30d.")
    alerting: Alerting = Field(default_factory=Alerting)
    runbook: str = Field(default="triage", description="File stem under docs/runbooks.")

    @model_validator(mode="after")
    def _consistent(self) -> SloDefinition:
        if not _SLO_NAME.match(self.name):
            raise ValueError(
                f"name: {self.name!r} is not valid; use 1-63 lower-case letters, digits "
                "and '-', starting and ending with a letter or digit"
            )
        if self.workload_class != ANY_CLASS and not _CLASS_NAME.match(self.workload_class):
            raise ValueError(
                f"workload_class: {self.workload_class!r} is not valid; give one class name "
                "or '*' for all classes"
            )
        if not _RUNBOOK.match(self.runbook):
            raise ValueError(
                f"runbook: {self.runbook!r} is not a file stem; write e.g. node-failure"
            )
        budget = self.error_budget
        for severity, i, w in self.alerting.windows():
            where = f"alerting.{severity}[{i}]"
            if w.burn_rate * budget >= 1:
                raise ValueError(
                    f"{where}.burn_rate: {w.burn_rate:g} x error budget {budget:g} is "
                    f"{w.burn_rate * budget:g}, an error ratio above 100%, so this alert can "
                    f"never fire; use a burn_rate below {1 / budget:g} or remove the window"
                )
            if w.long > self.window:
                raise ValueError(
                    f"{where}.long: {format_duration(w.long)} is longer than the SLO window "
                    f"{format_duration(self.window)}; shorten it or lengthen window"
                )
        return self

    @property
    def error_budget(self) -> float:
        """Allowed bad fraction, ``1 - objective``."""
        return 1.0 - self.objective


class SloFile(_Model):
    api_version: Literal["hpcbridge/v1"] = Field(alias="apiVersion")
    kind: Literal["SLOList"]
    evaluation_interval: DurationS = Field(
        default=60, description="Prometheus rule evaluation interval the evaluator mimics."
    )
    slos: tuple[SloDefinition, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> SloFile:
        if not self.slos:
            raise ValueError("slos: the list is empty; define at least one SLO")
        seen: set[str] = set()
        for i, slo in enumerate(self.slos):
            if slo.name in seen:
                raise ValueError(f"slos.{i}.name: {slo.name!r} is used twice; rename one")
            seen.add(slo.name)
        return self
