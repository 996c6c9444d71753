"""The built-in SLO evaluator, step by step, against a recording sink."""

from __future__ import annotations

from collections.abc import Sequence

from hpcbridge.api import SloEvaluator
from hpcbridge.slo import AlertGroup, Notifier, load_slo_text
from hpcbridge.store import MemoryStore
from tests.telemetry._sim import Sim

SLO_FILE = """
apiVersion: hpcbridge/v1
kind: SLOList
evaluation_interval: 10s
slos:
  - name: platform-success
    window: 1h
    objective: 0.99
    sli:
      ratio:
        total: {metric: hpcbridge_jobs_finished_total, where_not: {outcome: cancelled}}
        bad:
          metric: hpcbridge_jobs_finished_total
          where: {failure_class: [node_failure, preempted, lost, backend_unavailable]}
    alerting:
      page: [{long: 10m, short: 1m, burn_rate: 14.4}]
      ticket: []
      min_bad_events: 3
"""


class Recorder:
    def __init__(self) -> None:
        self.groups: list[AlertGroup] = []

    def send(self, groups: Sequence[AlertGroup]) -> None:
        self.groups.extend(groups)


def test_burst_of_platform_failures_pages_once_and_notifies_each_job() -> None:
    store = MemoryStore()
    sim = Sim(store, now=1_000_000.0)
    sink = Recorder()
    slos = load_slo_text(SLO_FILE).slos
    evaluator = SloEvaluator(store, slos, Notifier(sink), evaluation_interval_s=10)
    for _ in range(5):
        sim.job(["succeeded"], queue_s=1, run_s=1)
    evaluator.step(sim.now)
    assert sink.groups == []  # healthy traffic: nothing to say
    for _ in range(4):
        sim.job(["lost"], queue_s=1, run_s=1, project="climate")
    slo_report, failures = evaluator.step(sim.now)
    assert [(a.slo, a.severity) for a in slo_report.sent] == [("platform-success", "page")]
    assert len(failures.sent) == 1 and len(failures.sent[0].job_ids) == 4
    assert failures.sent[0].labels["failure_class"] == "lost"
    again, more = evaluator.step(sim.now + 1)
    assert not again.sent and not more.sent  # deduplicated
