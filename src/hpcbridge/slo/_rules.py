"""Prometheus recording and alerting rules for SLOs (checked with ``promtool``).

Per SLO, one rule group ``hpcbridge-slo-<name>`` holds, in evaluation order:

- ``slo:sli_slice_bad:bool`` (band SLIs only): 1 per gauge series outside the band;
- ``slo:sli_error:ratio_rate<w>`` for every window used: the error ratio, absent when
  the window holds no events;
- ``slo:sli_bad_events:increase<w>`` for every long window: the low-volume guard's input;
- ``slo:objective:ratio`` and ``slo:error_budget:remaining_ratio`` for dashboards;
- one ``HpcbridgeSloBurnRate`` alert per severity (page, ticket) whose expression ORs
  the window pairs of that severity, each as in ``_alerts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from hpcbridge.slo._alerts import (
    DEFAULT_RUNBOOK_BASE,
    SLO_ALERT_NAME,
    Severity,
    alert_annotations,
    alert_labels,
    threshold,
)
from hpcbridge.slo._duration import format_duration
from hpcbridge.slo._model import BurnWindow, SloDefinition
from hpcbridge.slo._promql import (
    SLICE_RECORD,
    bad_events_expr,
    error_ratio_expr,
    number,
    slice_expr,
)

ERROR_RATIO = "slo:sli_error:ratio_rate{}"
BAD_EVENTS = "slo:sli_bad_events:increase{}"
OBJECTIVE = "slo:objective:ratio"
BUDGET_REMAINING = "slo:error_budget:remaining_ratio"


def error_ratio_record(window_s: int) -> str:
    return ERROR_RATIO.format(format_duration(window_s))


def bad_events_record(window_s: int) -> str:
    return BAD_EVENTS.format(format_duration(window_s))


def generate_rules(
    slos: Sequence[SloDefinition], *, runbook_base: str = DEFAULT_RUNBOOK_BASE
) -> dict[str, Any]:
    """A Prometheus rule file (as a YAML-serialisable dict) for ``slos``."""
    return {"groups": [_group(slo, runbook_base) for slo in slos]}


class _Dumper(yaml.SafeDumper):
    """Writes multi-line expressions as literal blocks, so rule files stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def rules_to_yaml(rules: dict[str, Any]) -> str:
    return yaml.dump(rules, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def _group(slo: SloDefinition, runbook_base: str) -> dict[str, Any]:
    labels = {"slo": slo.name, "workload_class": slo.workload_class}
    rules: list[dict[str, Any]] = []
    if slo.sli.band is not None:
        rules.append(
            {
                "record": SLICE_RECORD,
                "expr": slice_expr(slo.sli.band, slo.workload_class),
                "labels": {"slo": slo.name},
            }
        )
    windows = sorted(
        {slo.window} | {s for _, _, w in slo.alerting.windows() for s in (w.long, w.short)}
    )
    for window_s in windows:
        rules.append(
            {
                "record": error_ratio_record(window_s),
                "expr": error_ratio_expr(slo, window_s),
                "labels": dict(labels),
            }
        )
    for long_s in sorted({w.long for _, _, w in slo.alerting.windows()}):
        rules.append(
            {
                "record": bad_events_record(long_s),
                "expr": bad_events_expr(slo, long_s),
                "labels": dict(labels),
            }
        )
    rules.append(
        {"record": OBJECTIVE, "expr": f"vector({number(slo.objective)})", "labels": dict(labels)}
    )
    ratio = f'{error_ratio_record(slo.window)}{{slo="{slo.name}"}}'
    rules.append(
        {
            "record": BUDGET_REMAINING,
            "expr": f"1 - {ratio} / {number(slo.error_budget)}",
            "labels": dict(labels),
        }
    )
    for severity in ("page", "ticket"):
        windows_of = slo.alerting.page if severity == "page" else slo.alerting.ticket
        if windows_of:
            rules.append(_alert(slo, severity, windows_of, runbook_base))
    return {"name": f"hpcbridge-slo-{slo.name}", "rules": rules}


def _alert(
    slo: SloDefinition, severity: Severity, windows: Sequence[BurnWindow], runbook_base: str
) -> dict[str, Any]:
    labels = alert_labels(slo, severity)
    del labels["alertname"]
    return {
        "alert": SLO_ALERT_NAME,
        "expr": "\nor\n".join(_condition(slo, w) for w in windows),
        "labels": labels,
        "annotations": alert_annotations(slo, severity, runbook_base),
    }


def _condition(slo: SloDefinition, window: BurnWindow) -> str:
    name = f'slo="{slo.name}"'
    limit = number(threshold(slo, window))
    long = format_duration(window.long)
    return (
        f"(\n  {error_ratio_record(window.long)}{{{name}}} > {limit}\n"
        f"  and last_over_time({error_ratio_record(window.short)}{{{name}}}[{long}]) > {limit}\n"
        f"  and {bad_events_record(window.long)}{{{name}}} >= "
        f"{number(slo.alerting.guard(window))}\n)"
    )
