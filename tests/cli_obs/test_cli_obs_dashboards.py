"""Dashboards: every query parses (promtool) and names only series that exist: what the
collector exports, the SLO recording rules, or Prometheus' ALERTS."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpcbridge.slo import default_slos, generate_rules
from hpcbridge.telemetry import dashboards as d
from hpcbridge.telemetry import exported_series
from tests.cli_obs.conftest import Cli

REPO = Path(__file__).resolve().parents[2]
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan", "le"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers that are not functions, keywords,
    label names or durations."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _NAME.finditer(text):
        rest = text[match.end() :].lstrip()
        before = text[: match.start()]
        if rest.startswith("(") or match.group() in _KEYWORDS:
            continue
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # the exponent of 1e3 and the like
        names.add(match.group())
    return names


def test_metric_names_parser() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, backend) (rate(a_bucket{x="y z"}[5m]))) '
        "/ ignoring(slo) slo:objective:ratio or vector(0) and on() (time() - b > bool 1e3)"
    )
    assert metric_names(expr) == {"a_bucket", "slo:objective:ratio", "b"}


def _documents() -> dict[str, dict[str, Any]]:
    return {name: d.render(build()) for name, build in d.BUILDERS.items()}


def _known() -> set[str]:
    rules = generate_rules(default_slos())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    assert recorded >= d.SLO_RULE_SERIES
    return set(exported_series()) | recorded | {"ALERTS"}


def test_every_query_names_existing_series() -> None:
    known = _known()
    seen = 0
    for name, document in _documents().items():
        for title, expr in d.queries(document):
            seen += 1
            unknown = metric_names(expr) - known
            assert not unknown, f"{name} / {title}: {expr!r} names {sorted(unknown)}"
    assert seen >= 30


def test_three_audiences_with_the_panels_they_need() -> None:
    titles = {n: {p["title"] for p in doc["panels"]} for n, doc in _documents().items()}
    assert {
        "Job success rate (7d)",
        "Error budget remaining",
        "Cost per successful result (7d)",
        "Spend (7d)",
        "Waste (7d)",
    } <= titles["executive"]
    assert {"Failed jobs (1h)", "Pending queue", "Recent preemptions", "Nodes down or drained"} <= (
        titles["oncall"]
    )
    assert {"Scheduler events", "Checkpoint latency p50 / p95"} <= titles["debug"]
    for document in _documents().values():
        for panel in document["panels"]:
            for target in panel.get("targets") or []:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert target["refId"]


@pytest.mark.prometheus
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found; install Debian's 'prometheus' package")
    rules = [
        {"record": f"check:panel_{i}", "expr": expr}
        for i, (_, expr) in enumerate(
            q for document in _documents().values() for q in d.queries(document)
        )
    ]
    (tmp_path / "panels.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}, width=1000)
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "panels.yml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_writes_the_committed_dashboards(cli: Cli, tmp_path: Path) -> None:
    result = cli("dashboards", "export", str(tmp_path / "out"))
    assert result.code == 0, result.err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["hpcbridge-debug.json", "hpcbridge-executive.json", "hpcbridge-oncall.json"]
    for name in written:
        fresh = json.loads((tmp_path / "out" / name).read_text())
        committed = json.loads((REPO / "dashboards" / name).read_text())
        assert fresh == committed, (
            f"dashboards/{name} is stale: run 'hpcbridge dashboards export dashboards'"
        )
