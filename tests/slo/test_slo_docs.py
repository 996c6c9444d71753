"""Runbooks exist for every alert that links to one, and have the four sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbridge.slo import default_slos, generate_rules, load_slo_file
from hpcbridge.slo._notify import RUNBOOK_BY_FAILURE_CLASS

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"
REQUIRED = (
    "node-failure",
    "fabric-degradation",
    "storage-slowdown",
    "licence-exhaustion",
    "preemption",
    "scheduler-misconfiguration",
    "silent-data-corruption",
    "triage",
)
SECTIONS = ("## Symptom", "## Signal", "## Automatic mitigation", "## Manual steps")


@pytest.mark.parametrize("name", REQUIRED)
def test_runbook_has_the_four_sections(name: str) -> None:
    text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
    positions = [text.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions), name
    assert positions == sorted(positions), f"{name}: sections out of order"


def test_every_linked_runbook_exists() -> None:
    slos = [*default_slos(), *load_slo_file(REPO / "examples" / "slo.yaml").slos]
    urls = {
        rule["annotations"]["runbook_url"]
        for group in generate_rules(slos)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    urls |= {f"docs/runbooks/{name}.md" for name in RUNBOOK_BY_FAILURE_CLASS.values()}
    for url in urls:
        assert (REPO / url).is_file(), url


def test_slo_doc_covers_every_default() -> None:
    text = (REPO / "docs" / "slo.md").read_text(encoding="utf-8")
    for slo in default_slos():
        assert f"`{slo.name}`" in text, slo.name
    index = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    for name in REQUIRED:
        assert f"({name}.md)" in index, name
