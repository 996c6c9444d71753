"""``hpcbridge cost cards|report|budgets``: prices, chargeback and budgets."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hpcbridge.cli._setup import usable_settings
from hpcbridge.cost import (
    Report,
    budget_use,
    format_amount,
    load_budgets,
    load_cards,
    report,
)
from hpcbridge.errors import ConfigError, SpecError
from hpcbridge.logs import configure_logging
from hpcbridge.spec import parse_duration_s
from hpcbridge.store import open_store

cost_app = typer.Typer(
    no_args_is_help=False,
    help="Cost: rate cards, chargeback reports and budgets.",
)
_out = Console()
_DEFAULT_WINDOW_S = 30 * 86400.0


@cost_app.command("cards")
def cards(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The rate cards found, each cluster's versions in the order they come into force."""
    settings = usable_settings()
    book = load_cards(settings.resolved_rate_cards)
    rows = [
        {
            "card": card.card_id,
            "cluster": card.cluster,
            "version": card.version,
            "effective_from": _iso(card.effective_from),
            "currency": card.currency,
            "partitions": sorted(card.partitions),
            "source": card.source,
        }
        for card in book.cards
    ]
    if json_output:
        _out.print_json(json.dumps(rows))
        return
    if not rows:
        _out.print(
            f"No rate cards in {settings.resolved_rate_cards}: attempts are charged 0. "
            "Add one YAML file per card version (see README, 'Cost and budgets')."
        )
        return
    table = Table("card", "effective from", "currency", "partitions", "file")
    for row in rows:
        table.add_row(
            str(row["card"]),
            str(row["effective_from"]),
            str(row["currency"]),
            ", ".join(row["partitions"]),
            str(row["source"]),
        )
    _out.print(table)


@cost_app.command("report")
def cost_report(
    by: Annotated[
        str, typer.Option("--by", help="project, team, user, workload_class or tag:KEY.")
    ] = "project",
    since: Annotated[
        str | None,
        typer.Option("--since", help="A date (2026-12-01), a UTC time, or how long ago (7d)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Same forms as --since; default now.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """Spend, waste, core- and GPU-hours and cost per successful result, by group."""
    if json_output and csv_output:
        raise ConfigError("--json and --csv exclude each other; choose one")
    now = time.time()
    end = _moment(until, "--until", now) if until else now
    start = _moment(since, "--since", now) if since else end - _DEFAULT_WINDOW_S
    settings = usable_settings()
    configure_logging()
    book = load_cards(settings.resolved_rate_cards)
    store = open_store(settings)
    try:
        result = report(store, book, by=by, since=start, until=end)
    finally:
        store.close()
    if json_output:
        _out.print_json(json.dumps(result.as_dict()))
    elif csv_output:
        typer.echo(_csv(result), nl=False)
    else:
        _out.print(_table(result))


@cost_app.command("budgets")
def budgets(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each budget's use in its current period against its soft and hard limits."""
    settings = usable_settings()
    configure_logging()
    found = load_budgets(settings.resolved_budgets_file)
    book = load_cards(settings.resolved_rate_cards)
    store = open_store(settings)
    try:
        uses = budget_use(store, book, found, time.time())
    finally:
        store.close()
    if json_output:
        _out.print_json(json.dumps([use.as_dict() for use in uses]))
        return
    if not uses:
        _out.print(f"No budgets in {settings.resolved_budgets_file}.")
        return
    table = Table("budget", "scope", "period from", "used", "soft", "hard", "state", "owner")
    for use in uses:
        kind, name = use.budget.scope
        state = "over hard" if use.over_hard else "over soft" if use.over_soft else "ok"
        table.add_row(
            use.budget.name,
            f"{kind} {name}",
            _iso(use.period_start),
            f"{use.currency} {format_amount(use.used)}".strip(),
            "-" if use.budget.soft is None else format_amount(use.budget.soft),
            "-" if use.budget.hard is None else format_amount(use.budget.hard),
            state,
            use.budget.owner,
        )
    _out.print(table)


def _table(result: Report) -> Table:
    money = result.currency or "cost"
    table = Table(
        result.by,
        f"spend ({money})",
        "waste",
        "core-hours",
        "GPU-hours",
        "attempts",
        "results",
        "cost/result",
        title=f"Chargeback {_iso(result.since)} .. {_iso(result.until)}",
    )
    for row in [*result.rows, result.total]:
        per = row.cost_per_result
        table.add_row(
            row.group,
            format_amount(row.spend),
            format_amount(row.waste),
            format_amount(row.core_hours),
            format_amount(row.gpu_hours),
            str(row.attempts),
            str(row.results),
            "-" if per is None else format_amount(per),
            end_section=row is result.rows[-1] if result.rows else False,
        )
    if result.total.unpriced:
        table.caption = (
            f"{result.total.unpriced} attempt(s) no rate card covers are charged 0: "
            "hpcbridge cost cards"
        )
    return table


def _csv(result: Report) -> str:
    buffer = io.StringIO()
    rows = [row.as_dict() for row in [*result.rows, result.total]]
    writer = csv.DictWriter(buffer, fieldnames=[result.by, *list(rows[0])[1:], "currency"])
    writer.writeheader()
    for row in rows:
        group = row.pop("group")
        writer.writerow({result.by: group, **row, "currency": result.currency})
    return buffer.getvalue()


def _moment(text: str, option: str, now: float) -> float:
    """A date or UTC time in ISO form, or a duration meaning that long before ``now``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    try:
        return now - parse_duration_s(text)
    except (SpecError, ValueError):
        raise ConfigError(
            f"{option} {text!r} is neither a date nor a duration; use e.g. 2026-12-01, "
            "2026-12-01T08:00 (UTC) or 7d"
        ) from None


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M")
