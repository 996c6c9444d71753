"""SLOs for hpcbridge: definitions, SLI math, error budgets, burn-rate alerts and rules.

Pure functions take ``now`` (epoch seconds) as a parameter. The same three-part alert
condition (long window, short window with latest evidence, low-volume guard) is computed
by ``evaluate_alerts`` in Python and by the rules of ``generate_rules`` in Prometheus.
See docs/slo.md.
"""

from hpcbridge.slo._adapter import FinishedJobFeed, finished_jobs, runbook_for
from hpcbridge.slo._alerts import (
    DEFAULT_RUNBOOK_BASE,
    SLO_ALERT_NAME,
    Alert,
    Severity,
    WindowVerdict,
    evaluate_alerts,
    evaluate_window,
)
from hpcbridge.slo._cost import ResultCost, cost_per_result, render_cost_table
from hpcbridge.slo._defaults import PLATFORM_BAD_CLASSES, default_slos
from hpcbridge.slo._load import SloConfigError, load_slo_document, load_slo_file, load_slo_text
from hpcbridge.slo._math import (
    ErrorBudget,
    SampleSeries,
    WindowTotals,
    burn_rate,
    error_budget,
    error_ratio,
    sli,
)
from hpcbridge.slo._model import (
    Alerting,
    BandSli,
    BurnWindow,
    RatioSli,
    Selector,
    Sli,
    SloDefinition,
    SloFile,
    ThresholdSli,
)
from hpcbridge.slo._notify import JOB_FAILURE_ALERT, Notifier, NotifyReport
from hpcbridge.slo._records import (
    FinishedAttempt,
    FinishedJob,
    GpuUtilizationSample,
    SliSample,
    build_samples,
    build_samples_by_slo,
)
from hpcbridge.slo._report import SloStatus, render_report_table, report_to_dict, slo_report
from hpcbridge.slo._rules import generate_rules, rules_to_yaml
from hpcbridge.slo._silences import Matcher, Silence, parse_matchers
from hpcbridge.slo._sinks import AlertGroup, AlertmanagerSink, NotifyError, Sink, WebhookSink

__all__ = [
    "DEFAULT_RUNBOOK_BASE",
    "JOB_FAILURE_ALERT",
    "PLATFORM_BAD_CLASSES",
    "SLO_ALERT_NAME",
    "Alert",
    "AlertGroup",
    "Alerting",
    "AlertmanagerSink",
    "BandSli",
    "BurnWindow",
    "ErrorBudget",
    "FinishedAttempt",
    "FinishedJob",
    "FinishedJobFeed",
    "GpuUtilizationSample",
    "Matcher",
    "Notifier",
    "NotifyError",
    "NotifyReport",
    "RatioSli",
    "ResultCost",
    "SampleSeries",
    "Selector",
    "Severity",
    "Silence",
    "Sink",
    "Sli",
    "SliSample",
    "SloConfigError",
    "SloDefinition",
    "SloFile",
    "SloStatus",
    "ThresholdSli",
    "WebhookSink",
    "WindowTotals",
    "WindowVerdict",
    "build_samples",
    "build_samples_by_slo",
    "burn_rate",
    "cost_per_result",
    "default_slos",
    "error_budget",
    "error_ratio",
    "evaluate_alerts",
    "evaluate_window",
    "finished_jobs",
    "generate_rules",
    "load_slo_document",
    "load_slo_file",
    "load_slo_text",
    "parse_matchers",
    "render_cost_table",
    "render_report_table",
    "report_to_dict",
    "rules_to_yaml",
    "runbook_for",
    "sli",
    "slo_report",
]
