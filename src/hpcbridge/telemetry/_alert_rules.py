"""Alerting rules on the data-integrity series (checked with ``promtool``), shipped beside
the SLO rules by ``hpcbridge slo rules``.

A checksum mismatch is corruption that was caught: a copy, a storage system or a node
changed bytes. Even one is worth a look, so the alert fires on any increase, per project,
workload class and where the check found it.
"""

from __future__ import annotations

from typing import Any

from hpcbridge import runbooks
from hpcbridge.telemetry import _names as n

DATA_INTEGRITY_GROUP = "hpcbridge-data-integrity"
CHECKSUM_ALERT = "HpcbridgeChecksumMismatch"
CHECKSUM_WINDOW = "30m"
CHECKSUM_RUNBOOK = "silent-data-corruption"


def data_integrity_rules(runbook_base: str | None = None) -> dict[str, Any]:
    """One Prometheus rule group (a YAML-serialisable dict)."""
    by = "project, workload_class, check"
    return {
        "name": DATA_INTEGRITY_GROUP,
        "rules": [
            {
                "alert": CHECKSUM_ALERT,
                "expr": f"sum by ({by}) (increase({n.CHECKSUM_MISMATCHES}[{CHECKSUM_WINDOW}])) > 0",
                "labels": {"severity": "ticket"},
                "annotations": {
                    "summary": (
                        "Checksum mismatch in {{ $labels.project }}/{{ $labels.workload_class }}"
                        " (check {{ $labels.check }})"
                    ),
                    "description": (
                        "{{ $value | humanize }} job(s) failed on a checksum mismatch in the last "
                        f"{CHECKSUM_WINDOW}: stage_in/stage_out is a copy that did not match "
                        "its expected or streamed digest, node is an input that changed on "
                        "shared storage after staging. 'hpcbridge why JOB' names the file "
                        "and both digests."
                    ),
                    "runbook_url": runbooks.runbook_url(CHECKSUM_RUNBOOK, runbook_base),
                },
            }
        ],
    }
