"""The SQL of ``cost_totals``: recorded charges summed per group by the database."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, select

from hpcbridge.states import AttemptState
from hpcbridge.store._cost_totals import NONE, CostGroup
from hpcbridge.store._schema import attempts as attempts_t
from hpcbridge.store._schema import jobs as jobs_t

_FINISHED = (AttemptState.SUCCEEDED.value, AttemptState.FAILED.value)


def _group_column(by: str) -> ColumnElement[str]:
    def tag(key: str) -> ColumnElement[str]:
        return func.nullif(jobs_t.c.tags[key].as_string(), "")

    if by == "project":
        return jobs_t.c.project
    if by == "workload_class":
        return jobs_t.c.workload_class
    if by == "team":
        return func.coalesce(tag("team"), literal(NONE))
    if by == "user":
        return func.coalesce(func.nullif(jobs_t.c.owner, ""), tag("user"), literal(NONE))
    return func.coalesce(tag(by.removeprefix("tag:")), literal(NONE))


def _cost(field: str) -> ColumnElement[float]:
    found: ColumnElement[float] = attempts_t.c.details[("cost", field)].as_float()
    return found


def grouped_totals(
    conn: Connection, since: float, until: float, by: str
) -> tuple[tuple[CostGroup, ...], frozenset[tuple[str, str]]]:
    """The recorded charges in ``[since, until)``, summed per group by the database."""
    amount = _cost("amount")
    card = attempts_t.c.details[("cost", "card")].as_string()
    waste = attempts_t.c.details[("cost", "waste")].as_boolean()
    window = and_(
        attempts_t.c.state.in_(_FINISHED),
        attempts_t.c.ended_at >= since,
        attempts_t.c.ended_at < until,
        amount.is_not(None),
    )
    joined = attempts_t.join(jobs_t, jobs_t.c.job_id == attempts_t.c.job_id)
    group = _group_column(by).label("grp")
    zero = literal(0.0)
    stmt = (
        select(
            group,
            func.sum(amount),
            func.sum(case((waste.is_(True), amount), else_=zero)),
            func.sum(func.coalesce(_cost("core_hours"), zero)),
            func.sum(func.coalesce(_cost("gpu_hours"), zero)),
            func.count(),
            func.sum(case((attempts_t.c.state == AttemptState.SUCCEEDED.value, 1), else_=0)),
            func.sum(case((card.is_(None), 1), else_=0)),
        )
        .select_from(joined)
        .where(window)
        .group_by(group)
        .order_by(group)
    )
    groups = tuple(
        CostGroup(
            str(row[0]),
            float(row[1] or 0.0),
            float(row[2] or 0.0),
            float(row[3] or 0.0),
            float(row[4] or 0.0),
            int(row[5]),
            int(row[6] or 0),
            int(row[7] or 0),
        )
        for row in conn.execute(stmt)
    )
    currency = attempts_t.c.details[("cost", "currency")].as_string()
    cards = select(currency, card).where(window, card.is_not(None)).distinct()
    charged = frozenset((str(c or ""), str(k)) for c, k in conn.execute(cards))
    return groups, charged


def unrecorded_filter(since: float, until: float) -> ColumnElement[bool]:
    """Finished attempts in ``[since, until)`` without a recorded charge."""
    return and_(
        attempts_t.c.state.in_(_FINISHED),
        attempts_t.c.ended_at >= since,
        attempts_t.c.ended_at < until,
        _cost("amount").is_(None),
    )
