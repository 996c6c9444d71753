"""Grafana dashboards as code (grafana-foundation-sdk): executive, on-call and debug.

Every query names only series the collector exports, the SLO recording rules, or
Prometheus' own ``ALERTS``; a test parses each one to keep it so. Job ids never appear in
metrics, so "which jobs" panels point to ``hpcbridge why`` and the alerts' ``job_ids``.

    hpcbridge dashboards export DIR   # one JSON file per dashboard, for provisioning
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, Row
from grafana_foundation_sdk.builders.heatmap import Panel as Heatmap
from grafana_foundation_sdk.builders.prometheus import Dataquery as PromQuery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.text import Panel as Text
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

from hpcbridge.runbooks import runbook_url

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["hpcbridge", "generated"]

SLO_RULE_SERIES = frozenset(
    {"slo:error_budget:remaining_ratio", "slo:objective:ratio", "slo:sli_error:ratio_rate30d"}
)
"""Recording rules of ``hpcbridge slo rules`` that the dashboards read."""

_JOBS = "hpcbridge_jobs_finished_total"
_COST = "hpcbridge_cost_total"
_NOT_CANCELLED = f'{_JOBS}{{outcome!="cancelled"}}'


def _query(
    expr: str, legend: str = "__auto", *, instant: bool = False, ref: str = "A"
) -> PromQuery:
    query = PromQuery().expr(expr).legend_format(legend).datasource(DATASOURCE).ref_id(ref)
    return query.instant() if instant else query


def _timeseries(
    title: str, description: str, *queries: PromQuery, unit: str = "short"
) -> Timeseries:
    panel = Timeseries().title(title).description(description).unit(unit).datasource(DATASOURCE)
    for index, query in enumerate(queries):
        panel = panel.with_target(query.ref_id("ABCDEFGH"[index]))
    return panel.span(12).height(8)


def _stat(title: str, description: str, expr: str, *, unit: str = "short") -> Stat:
    return (
        Stat()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .with_target(_query(expr, instant=True))
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(6)
        .height(5)
    )


def _text(title: str, markdown: str, *, span: int = 12) -> Text:
    return Text().title(title).mode(TextMode.MARKDOWN).content(markdown).span(span).height(5)


def _quantile(q: float, metric: str, by: str, window: str, where: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{where}[{window}])))"


def _quantile_lines(metric: str, by: str, window: str, *quantiles: float) -> list[PromQuery]:
    """One line per quantile of a histogram and value of ``by`` (legend ``{{by}} p95``)."""
    return [
        _query(_quantile(q, metric, by, window), f"{{{{{by}}}}} p{round(q * 100)}")
        for q in quantiles
    ]


def _base(uid: str, title: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )


def executive() -> Dashboard:
    success = (
        f'sum(increase({_JOBS}{{outcome="succeeded"}}[7d])) / sum(increase({_NOT_CANCELLED}[7d]))'
    )
    by_project = (
        f'sum by (project) (rate({_JOBS}{{outcome="succeeded"}}[1d])) '
        f"/ sum by (project) (rate({_NOT_CANCELLED}[1d]))"
    )
    makespan = "hpcbridge_job_makespan_seconds"
    ok = '{outcome="succeeded"}'
    return (
        _base(
            "hpcbridge-executive",
            "hpcbridge / Executive",
            "Are we meeting our SLOs, how fast do results come back, what does it cost.",
        )
        .with_row(Row("Outcomes"))
        .with_panel(
            _stat(
                "Job success rate (7d)",
                "Succeeded / finished, cancelled excluded.",
                success,
                unit="percentunit",
            )
        )
        .with_panel(
            _stat(
                "Jobs finished (7d)", "Logical jobs and array tasks.", f"sum(increase({_JOBS}[7d]))"
            )
        )
        .with_panel(
            _stat(
                "Time to result p50 (7d)",
                "Acceptance to success, median.",
                _quantile(0.5, makespan, "", "7d", ok),
                unit="s",
            )
        )
        .with_panel(
            _stat(
                "SLO alerts firing",
                "Burn-rate alerts firing now (page and ticket).",
                'count(ALERTS{alertname="HpcbridgeSloBurnRate", alertstate="firing"}) or vector(0)',
            )
        )
        .with_panel(
            _timeseries(
                "Success rate by project (1d)",
                "Succeeded / finished per project.",
                _query(by_project, "{{project}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            _timeseries(
                "Time to result (succeeded jobs)",
                "Acceptance to success, p50 and p95 over a day.",
                _query(_quantile(0.5, makespan, "", "1d", ok), "p50"),
                _query(_quantile(0.95, makespan, "", "1d", ok), "p95"),
                unit="s",
            )
        )
        .with_row(Row("Error budgets"))
        .with_panel(
            _timeseries(
                "Error budget remaining",
                "Per SLO over its window (1 = untouched, 0 = spent, below 0 = overspent).",
                _query("slo:error_budget:remaining_ratio", "{{slo}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            _timeseries(
                "SLI vs objective (30d)",
                "Error ratio over the SLO window against the error budget.",
                _query("slo:sli_error:ratio_rate30d", "{{slo}} error ratio"),
                _query("1 - slo:objective:ratio", "{{slo}} budget"),
                unit="percentunit",
            )
        )
        .with_row(Row("Cost"))
        .with_panel(
            _stat(
                "Lost core-hours (7d)",
                "Core-hours of attempts that did not succeed, cancelled excluded.",
                "sum(increase(hpcbridge_lost_core_seconds_total"
                '{failure_class!="cancelled"}[7d])) / 3600',
            )
        )
        .with_panel(
            _stat(
                "Cost per successful result (7d)",
                "M9: all spend, failed attempts included, over the jobs and array tasks that "
                "succeeded (rate card currency).",
                f'sum(increase({_COST}[7d])) / sum(increase({_JOBS}{{outcome="succeeded"}}[7d]))',
            )
        )
        .with_panel(
            _stat(
                "Spend (7d)",
                "What attempts cost under the rate card in force when each started.",
                f"sum(increase({_COST}[7d]))",
            )
        )
        .with_panel(
            _stat(
                "Waste (7d)",
                "Spend on attempts that did not succeed (failed, preempted, lost, cancelled).",
                f'sum(increase({_COST}{{outcome!="succeeded"}}[7d]))',
            )
        )
        .with_panel(
            _timeseries(
                "Spend by project",
                "Spend per day and project; the chargeback report (hpcbridge cost report) "
                "breaks it down by team, user or any tag.",
                _query(f"sum by (project) (increase({_COST}[1d]))", "{{project}}"),
            )
        )
    )


def oncall(runbook_base: str | None = None) -> Dashboard:
    """``runbook_base``: where the runbooks are published (the runbook_url_base setting)."""
    failed = f'{_JOBS}{{outcome="failed"}}'
    return (
        _base(
            "hpcbridge-oncall",
            "hpcbridge / On-call",
            "What is failing now, what is waiting, and where to look next.",
        )
        .with_row(Row("Now"))
        .with_panel(
            _stat("Failed jobs (1h)", "Jobs that ended failed.", f"sum(increase({failed}[1h]))")
        )
        .with_panel(
            _stat(
                "Pending queue",
                "Jobs queued, held or waiting to retry.",
                'sum(hpcbridge_jobs{state=~"queued|held|retry_wait"})',
            )
        )
        .with_panel(
            _stat(
                "Backends down",
                "Backends whose latest poll failed.",
                "count(hpcbridge_backend_up == 0) or vector(0)",
            )
        )
        .with_panel(
            _stat(
                "Seconds since last reconcile",
                "A large value means the reconciler is stuck or down.",
                "time() - max(hpcbridge_reconciler_last_cycle_timestamp_seconds)",
                unit="s",
            )
        )
        .with_panel(
            _timeseries(
                "Failed jobs by failure class",
                "Per 15 minutes; the platform's classes are node_failure, preempted, lost "
                "and backend_unavailable.",
                _query(f"sum by (failure_class) (increase({failed}[15m]))", "{{failure_class}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Failing attempts by class",
                "Retries hide failures from users, not from this panel.",
                _query(
                    "sum by (failure_class) "
                    '(increase(hpcbridge_attempts_finished_total{outcome="failed"}[15m]))',
                    "{{failure_class}}",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Jobs by state",
                "Active jobs in each state.",
                _query("sum by (state) (hpcbridge_jobs)", "{{state}}"),
            )
        )
        .with_panel(
            _timeseries(
                "Recent preemptions",
                "Attempts preempted per hour, spot and regular partitions.",
                _query(
                    "sum by (partition_kind) (increase(hpcbridge_preemptions_total[1h]))",
                    "{{partition_kind}}",
                ),
            )
        )
        .with_panel(
            _timeseries(
                "Nodes down or drained",
                "As each backend last reported them.",
                _query(
                    "sum by (backend, state) "
                    '(hpcbridge_backend_nodes{state=~"down|drained|draining|fail"})',
                    "{{backend}} {{state}}",
                ),
            )
        )
        .with_panel(
            Table()
            .title("Alerts firing")
            .description("hpcbridge alerts firing in Prometheus, with their labels.")
            .datasource(DATASOURCE)
            .with_target(
                _query(
                    'ALERTS{alertname=~"Hpcbridge.*", alertstate="firing"}', instant=True
                ).format(PromQueryFormat.TABLE)
            )
            .span(12)
            .height(8)
        )
        .with_panel(
            _text(
                "Failing jobs",
                "Metrics never carry job ids. The *HpcbridgeJobFailures* alerts list them "
                "(`job_ids` annotation); on a host with the store run "
                "`hpcbridge list --state failed` and `hpcbridge why JOB` for the failure "
                "in words, the log tail and the runbook. Runbooks: "
                f"[triage]({runbook_url('triage', runbook_base)}), "
                f"[all]({runbook_url('README', runbook_base)}).",
            )
        )
    )


def debug() -> Dashboard:
    return (
        _base(
            "hpcbridge-debug",
            "hpcbridge / Debug",
            "Nodes, scheduler traffic, polling and checkpoint latency.",
        )
        .with_row(Row("Nodes and scheduler"))
        .with_panel(
            Heatmap()
            .title("Node utilization (running attempts per node)")
            .description("One row per node; darker is busier.")
            .datasource(DATASOURCE)
            .with_target(_query("sum by (node) (hpcbridge_node_running_attempts)", "{{node}}"))
            .span(12)
            .height(8)
        )
        .with_panel(
            _timeseries(
                "Scheduler events",
                "Job state transitions per second.",
                _query(
                    "sum by (from_state, to_state) (rate(hpcbridge_job_transitions_total[5m]))",
                    "{{from_state}} → {{to_state}}",
                ),
                unit="ops",
            )
        )
        .with_panel(
            _timeseries(
                "Backend poll latency p95",
                "One batched poll of all active attempts per backend.",
                _query(
                    _quantile(0.95, "hpcbridge_backend_poll_duration_seconds", "backend", "5m"),
                    "{{backend}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            _timeseries(
                "Poll errors and reconciler cycle p95",
                "Failed polls per second; seconds per reconciler cycle.",
                _query(
                    "sum by (backend) (rate(hpcbridge_backend_poll_errors_total[5m]))",
                    "{{backend}} errors/s",
                ),
                _query(
                    _quantile(0.95, "hpcbridge_reconciler_cycle_duration_seconds", "", "5m"),
                    "cycle p95 (s)",
                ),
            )
        )
        .with_row(Row("Jobs"))
        .with_panel(
            _timeseries(
                "Checkpoint latency p50 / p95",
                "Seconds per checkpoint save, by workload class.",
                *_quantile_lines(
                    "hpcbridge_checkpoint_duration_seconds", "workload_class", "30m", 0.5, 0.95
                ),
                unit="s",
            )
        )
        .with_panel(
            _timeseries(
                "Checkpoint overhead",
                "Checkpoint seconds / run seconds (the checkpoint-overhead SLO wants < 5%).",
                _query(
                    "sum(rate(hpcbridge_checkpoint_duration_seconds_sum[1h])) "
                    "/ sum(rate(hpcbridge_run_seconds_total[1h]))",
                    "overhead",
                ),
                unit="percentunit",
            )
        )
        .with_panel(
            Heatmap()
            .title("Queue wait")
            .description("Jobs by seconds from acceptance to start.")
            .datasource(DATASOURCE)
            .with_target(
                _query(
                    "sum by (le) (increase(hpcbridge_queue_wait_seconds_bucket[10m]))", "{{le}}"
                ).format(PromQueryFormat.HEATMAP)
            )
            .span(12)
            .height(8)
        )
        .with_panel(
            _timeseries(
                "Time to recover p95",
                "Failed attempt to the next attempt running, by failure class.",
                _query(
                    _quantile(0.95, "hpcbridge_time_to_recover_seconds", "failure_class", "1h"),
                    "{{failure_class}}",
                ),
                unit="s",
            )
        )
        .with_panel(
            _timeseries(
                "GPU utilization",
                "Mean over running GPU jobs, from the job side's NVML samples.",
                _query("hpcbridge_gpu_utilization_ratio", "{{project}}/{{workload_class}}"),
                unit="percentunit",
            )
        )
        .with_panel(
            _timeseries(
                "Telemetry events folded",
                "Store events read by the collector per second.",
                _query("rate(hpcbridge_telemetry_events_processed_total[5m])", "events/s"),
                unit="ops",
            )
        )
        .with_panel(
            _timeseries(
                "Fabric latency p50 / p95",
                "Round trip between a multi-node job's first two nodes, probed at its start (M7).",
                *_quantile_lines(
                    "hpcbridge_fabric_latency_seconds", "workload_class", "1h", 0.5, 0.95
                ),
                unit="s",
            )
        )
        .with_panel(
            _timeseries(
                "Storage throughput p50 / p5",
                "Bytes per second of checkpoint writes (M8); a falling p5 is a slow file system.",
                *_quantile_lines(
                    "hpcbridge_storage_throughput_bytes_per_second", "operation", "1h", 0.5, 0.05
                ),
                unit="Bps",
            )
        )
    )


BUILDERS: dict[str, Callable[[], Dashboard]] = {
    "executive": executive,
    "oncall": oncall,
    "debug": debug,
}


def render(builder: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a plain dict)."""
    document: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    return document


def export(directory: Path, runbook_base: str | None = None) -> list[Path]:
    """Write ``hpcbridge-<name>.json`` for every dashboard into ``directory``; runbook
    links point under ``runbook_base`` (default: the source tree's docs/runbooks)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    builders = BUILDERS | {"oncall": partial(oncall, runbook_base)}
    for name, build in builders.items():
        path = directory / f"hpcbridge-{name}.json"
        path.write_text(json.dumps(render(build()), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def queries(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query target of every panel, rows included."""
    for panel in document.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets") or []:
                expr = target.get("expr")
                if isinstance(expr, str):
                    yield str(inner.get("title", "")), expr
