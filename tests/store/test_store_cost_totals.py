"""The store contract for ``cost_totals`` (chargeback summed by the store), on every store:
the database's sums equal the Python reference over the same attempts, per grouping."""

from __future__ import annotations

from typing import Any

import pytest
from tests.store.test_store_contract import create, new_job, store

from hpcbridge.states import AttemptState
from hpcbridge.store import NONE, CostTotals, JobId, Store, new_token
from hpcbridge.store._cost_totals import totals_of

__all__ = ["store"]  # the contract suite's fixture: memory, SQLite and PostgreSQL


def _charge(amount: float, *, waste: bool, card: str | None = "c/v1", **extra: Any) -> Any:
    return {
        "amount": amount,
        "currency": "EUR",
        "card": card,
        "waste": waste,
        "core_hours": amount * 10,
        "gpu_hours": amount,
        **extra,
    }


def _end(store: Store, job_id: str, ended: float, details: dict[str, Any], ok: bool) -> None:
    attempt = store.create_attempt(
        JobId(job_id), backend="slurm", token=new_token(), now=100.0, details=details
    )
    state = AttemptState.SUCCEEDED if ok else AttemptState.FAILED
    store.update_attempt(attempt.job_id, attempt.number, state=state, ended_at=ended)


@pytest.fixture
def charged(store: Store) -> Store:
    create(
        store,
        new_job("ja", project="p1", tags={"team": "t1", "cc": "42"}, owner="ann"),
        new_job("jb", project="p2", tags={"team": ""}, owner=""),
        new_job("jc", project="p2", tags={"user": "bob"}, workload_class="critical"),
    )
    _end(store, "ja", 150.0, {"cost": _charge(1.5, waste=True)}, ok=False)
    _end(store, "ja", 160.0, {"cost": _charge(2.0, waste=False)}, ok=True)
    _end(store, "jb", 170.0, {"cost": _charge(0.0, waste=True, card=None)}, ok=False)
    _end(store, "jb", 180.0, {"cost": {}}, ok=True)  # no recorded charge: priced by the caller
    _end(store, "jc", 190.0, {"cost": _charge(4.25, waste=False)}, ok=True)
    _end(store, "jc", 400.0, {"cost": _charge(9.0, waste=False)}, ok=True)  # outside
    return store


@pytest.mark.parametrize("by", ["project", "team", "user", "workload_class", "tag:cc"])
def test_sums_equal_the_reference_over_the_same_attempts(charged: Store, by: str) -> None:
    found = charged.cost_totals(150.0, 300.0, by)
    expected = totals_of(charged.attempts_ended(150.0, 300.0), by)
    _assert_equal(found, expected)


def test_groups_waste_results_and_what_is_left_to_price(charged: Store) -> None:
    found = charged.cost_totals(150.0, 300.0, "team")
    by_group = {g.group: g for g in found.groups}
    assert set(by_group) == {"t1", NONE}
    t1 = by_group["t1"]
    assert (t1.spend, t1.waste, t1.attempts, t1.results, t1.unpriced) == (3.5, 1.5, 2, 1, 0)
    assert t1.core_hours == pytest.approx(35.0) and t1.gpu_hours == pytest.approx(3.5)
    none = by_group[NONE]
    assert (none.spend, none.attempts, none.results, none.unpriced) == (4.25, 2, 1, 1)
    assert found.charged_under == {("EUR", "c/v1")}
    assert [(j.job_id, a.number) for j, a in found.unrecorded] == [("jb", 2)]
    users = {g.group: g.attempts for g in charged.cost_totals(150.0, 300.0, "user").groups}
    assert users == {"ann": 2, NONE: 1, "bob": 1}  # jb's unrecorded attempt is not summed
    assert charged.cost_totals(500.0, 600.0, "project") == CostTotals((), frozenset(), ())


def _assert_equal(found: CostTotals, expected: CostTotals) -> None:
    assert [g.group for g in found.groups] == [g.group for g in expected.groups]
    for got, want in zip(found.groups, expected.groups, strict=True):
        assert (got.attempts, got.results, got.unpriced) == (
            want.attempts,
            want.results,
            want.unpriced,
        )
        for name in ("spend", "waste", "core_hours", "gpu_hours"):
            assert getattr(got, name) == pytest.approx(getattr(want, name)), name
    assert found.charged_under == expected.charged_under
    assert found.unrecorded == expected.unrecorded
