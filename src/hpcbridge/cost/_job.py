"""What one logical job cost: all its attempts (an array's: all its tasks'), in words."""

from __future__ import annotations

from collections.abc import Iterable

from hpcbridge.cost._cards import CardBook
from hpcbridge.cost._report import Totals, cost_of
from hpcbridge.states import AttemptState
from hpcbridge.store import Attempt, Job


def format_amount(value: float) -> str:
    """Two decimals, or four significant digits for amounts under one cent."""
    return f"{value:,.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.4g}"


def job_totals(attempts: Iterable[tuple[Job, Attempt]], book: CardBook) -> tuple[Totals, str]:
    """The finished attempts' totals and the currency of their charges ('' if none)."""
    totals = Totals("job")
    currency = ""
    for job, attempt in attempts:
        if not attempt.state.finished:
            continue
        cost = cost_of(job, attempt, book)
        totals.add(cost, attempt.state is AttemptState.SUCCEEDED)
        currency = currency or cost.currency
    return totals, currency


def describe_job_cost(attempts: Iterable[tuple[Job, Attempt]], book: CardBook) -> str | None:
    """``EUR 5.22 over 2 attempts (EUR 1.30 waste); EUR 5.22 per successful result``;
    None before any attempt finished."""
    totals, currency = job_totals(attempts, book)
    if not totals.attempts:
        return None
    if totals.unpriced == totals.attempts:
        return (
            f"{format_amount(totals.core_hours)} core-hours over {totals.attempts} "
            "attempt(s); no rate card covers them (hpcbridge cost cards)"
        )
    money, hours = format_amount, format_amount
    text = (
        f"{currency} {money(totals.spend)} over {totals.attempts} attempt(s) "
        f"({currency} {money(totals.waste)} waste; {hours(totals.core_hours)} core-hours"
        + (f", {hours(totals.gpu_hours)} GPU-hours)" if totals.gpu_hours else ")")
    )
    per = totals.cost_per_result
    if per is not None:
        text += f"; {currency} {money(per)} per successful result"
    return text
