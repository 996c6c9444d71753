"""PromQL for SLI selectors and error ratios. Mirrors ``_records`` selector by selector."""

from __future__ import annotations

import re
from collections.abc import Mapping

from hpcbridge.slo._duration import format_duration
from hpcbridge.slo._model import ANY_CLASS, BandSli, Selector, SloDefinition, ThresholdSli

SLICE_RECORD = "slo:sli_slice_bad:bool"


def number(value: float) -> str:
    """A float literal as written into rules (10 significant digits)."""
    return format(value, ".10g")


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _matcher(label: str, values: tuple[str, ...], negate: bool) -> str:
    if len(values) == 1:
        return f"{label}{'!=' if negate else '='}{_string(values[0])}"
    pattern = "|".join(re.escape(v) for v in values)
    return f"{label}{'!~' if negate else '=~'}{_string(pattern)}"


def series(
    metric: str,
    workload_class: str,
    where: Mapping[str, tuple[str, ...]],
    where_not: Mapping[str, tuple[str, ...]],
    extra: tuple[str, ...] = (),
) -> str:
    matchers = (
        []
        if workload_class == ANY_CLASS
        else [_matcher("workload_class", (workload_class,), False)]
    )
    matchers += [_matcher(k, v, False) for k, v in sorted(where.items())]
    matchers += [_matcher(k, v, True) for k, v in sorted(where_not.items())]
    matchers += list(extra)
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def _selector(sel: Selector, workload_class: str) -> str:
    return series(sel.metric, workload_class, sel.where, sel.where_not)


def _le_matcher(le: float) -> str:
    if le == int(le):
        return f'le=~"{int(le)}|{int(le)}\\\\.0"'
    return f"le={_string(number(le))}"


def _threshold_series(th: ThresholdSli, workload_class: str) -> tuple[str, str]:
    """(good, total) series of a histogram threshold SLI: bucket ``le`` and ``_count``."""
    good = series(
        f"{th.metric}_bucket", workload_class, th.where, th.where_not, (_le_matcher(th.le),)
    )
    total = series(f"{th.metric}_count", workload_class, th.where, th.where_not)
    return good, total


def slice_expr(band: BandSli, workload_class: str) -> str:
    """1 for a gauge sample outside the band, 0 inside; one series per gauge series."""
    gauge = series(band.metric, workload_class, band.where, band.where_not)
    parts = []
    if band.min is not None:
        parts.append(f"({gauge} < bool {number(band.min)})")
    if band.max is not None:
        parts.append(f"({gauge} > bool {number(band.max)})")
    return " + ".join(parts)


def slice_selector(slo: SloDefinition) -> str:
    return f"{SLICE_RECORD}{{slo={_string(slo.name)}}}"


def _sum(fn: str, selector: str, window: str) -> str:
    return f"sum({fn}({selector}[{window}]))"


def error_ratio_expr(slo: SloDefinition, window_s: int) -> str:
    """Error ratio over ``window_s``; absent (not NaN) when the window holds no events."""
    w = format_duration(window_s)
    sli = slo.sli
    if sli.band is not None:
        rec = slice_selector(slo)
        return f"{_sum('sum_over_time', rec, w)} / ({_sum('count_over_time', rec, w)} > 0)"
    if sli.threshold is not None:
        good, total = _threshold_series(sli.threshold, slo.workload_class)
        return _good_form(_sum("rate", good, w), _sum("rate", total, w))
    assert sli.ratio is not None  # guaranteed by Sli's validator
    total = _sum("rate", _selector(sli.ratio.total, slo.workload_class), w)
    if sli.ratio.bad is not None:
        bad = _sum("rate", _selector(sli.ratio.bad, slo.workload_class), w)
        return f"clamp_max(({bad} or vector(0)) / ({total} > 0), 1)"
    assert sli.ratio.good is not None
    return _good_form(_sum("rate", _selector(sli.ratio.good, slo.workload_class), w), total)


def _good_form(good: str, total: str) -> str:
    return f"clamp_min(1 - ({good} or vector(0)) / ({total} > 0), 0)"


def bad_events_expr(slo: SloDefinition, window_s: int) -> str:
    """Bad events (in the SLI's units) in the window: the low-volume guard's input."""
    w = format_duration(window_s)
    sli = slo.sli
    if sli.band is not None:
        return f"{_sum('sum_over_time', slice_selector(slo), w)} or vector(0)"
    if sli.threshold is not None:
        good, total = _threshold_series(sli.threshold, slo.workload_class)
        return _difference(_sum("increase", total, w), _sum("increase", good, w))
    assert sli.ratio is not None
    total = _sum("increase", _selector(sli.ratio.total, slo.workload_class), w)
    if sli.ratio.bad is not None:
        return f"{_sum('increase', _selector(sli.ratio.bad, slo.workload_class), w)} or vector(0)"
    assert sli.ratio.good is not None
    return _difference(total, _sum("increase", _selector(sli.ratio.good, slo.workload_class), w))


def _difference(total: str, good: str) -> str:
    return f"clamp_min(({total} or vector(0)) - ({good} or vector(0)), 0)"
