"""Every finished attempt of the local executor is charged, failures as waste, and the
charge reaches the attempt-end event and the Prometheus counter."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.cost import AttemptCost
from hpcbridge.spec import load_spec_document
from hpcbridge.telemetry import StoreCollector


def _spec(name: str, argv: list[str], **extra: object) -> object:
    return load_spec_document(
        {
            "apiVersion": "hpcbridge/v1",
            "kind": "Job",
            "name": name,
            "project": "cost-test",
            "command": argv,
            "resources": {"cpus_per_task": 2},
            **extra,
        }
    )


def test_local_attempts_are_charged_and_failures_are_waste(tmp_path: Path) -> None:
    cards = tmp_path / "home" / "rate_cards"
    cards.mkdir(parents=True)
    (cards / "local.yaml").write_text(
        "cluster: local\nversion: v1\neffective_from: 2020-01-01\ncurrency: EUR\n"
        "partitions: {'*': {core_hour: 36.0}}\n"
    )
    settings = Settings(home=tmp_path / "home", database_url="memory://", local_cpus=4)
    client = Client(settings)
    try:
        good = client.submit(_spec("good", ["sleep", "0.2"]))  # type: ignore[arg-type]
        bad = client.submit(
            _spec(
                "bad",
                ["false"],
                retry={
                    "max_attempts": 2,
                    "retry_on": ["app_error"],
                    "backoff": {"initial": "0.1s", "jitter": 0},
                },
            )  # type: ignore[arg-type]
        )
        client.wait([good.job_id, bad.job_id], timeout_s=60)
        (ok,) = client.attempts(good.job_id)
        ok_cost = AttemptCost.from_details(ok.details.get("cost"))
        assert ok_cost is not None and ok_cost.card == "local/v1" and not ok_cost.waste
        assert ok_cost.core_hours > 0
        assert ok_cost.amount == pytest.approx(ok_cost.core_hours * 36.0, rel=1e-5)
        failed = [
            AttemptCost.from_details(a.details.get("cost")) for a in client.attempts(bad.job_id)
        ]
        assert len(failed) == 2 and all(c is not None and c.waste for c in failed)
        ends = [e for e in client.events(good.job_id) if e.kind == "attempt_succeeded"]
        assert ends[0].data["cost"] == ok_cost.amount

        registry = CollectorRegistry()
        registry.register(StoreCollector(client.store))
        value = registry.get_sample_value(
            "hpcbridge_cost_total",
            {"project": "cost-test", "workload_class": "batch", "outcome": "succeeded"},
        )
        assert value == ok_cost.amount
    finally:
        client.close()
