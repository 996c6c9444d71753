"""``hpcbridge token create|list|revoke`` and ``hpcbridge audit list|verify``.

In embedded mode they run as the local user, who has every right in their own home; each
change goes through the service layer, so it is audited like one made through the API.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hpcbridge.cli import _render as render
from hpcbridge.cli._setup import local_service as service_for
from hpcbridge.cli._setup import open_client
from hpcbridge.security import AuditFilter, AuditRecord, Principal, Role, TokenRecord
from hpcbridge.service import Service
from hpcbridge.spec import parse_duration_s

token_app = typer.Typer(
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="API tokens: create one for a project and role (shown once), list, revoke.",
)
audit_app = typer.Typer(
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="The hash-chained audit log: list records, verify the chain.",
)
out = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
EXIT_BROKEN = 1
"""``audit verify``: the chain is broken (or does not reach the exported head)."""


@contextmanager
def local_service() -> Iterator[tuple[Service, Principal]]:
    with open_client() as client:
        yield service_for(client)


def _role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise typer.BadParameter(f"{text!r} is not a role; use one of {roles}") from None


def _duration(text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _project(text: str) -> str:
    if not text.strip():
        raise typer.BadParameter("give a project name, e.g. --project climate ('*': every one)")
    return text.strip()


@token_app.command("create")
def create(
    project: Annotated[
        str,
        typer.Option(parser=_project, help="Project the token acts in; '*' for every project."),
    ],
    role: Annotated[
        Role,
        typer.Option(parser=_role, metavar="ROLE", help="admin, operator, member or viewer."),
    ],
    ttl: Annotated[
        float,
        typer.Option(parser=_duration, metavar="DURATION", help="Lifetime, e.g. 8h, 90m, 7d."),
    ],
    subject: Annotated[
        str | None, typer.Option(help="Who the token stands for; default: you.")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Create a token and print it once: it is stored only as a hash."""
    with local_service() as (service, me):
        raw, record = service.create_token(me, project, role, ttl, subject=subject)
    if json_output:
        out.print_json(render.dumps({"token": raw, **_token_document(record)}))
        return
    print(raw)
    typer.echo(
        f"{record.token_id}: {record.role} in {record.project} for {record.subject}, expires "
        f"{render.when(record.expires_at)}; shown once, keep it now",
        err=True,
    )


@token_app.command("list")
def list_tokens(
    project: Annotated[str | None, typer.Option(help="Only this project's tokens.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Tokens with their project, role, subject, expiry and revocation (never the token)."""
    with local_service() as (service, me):
        found = service.list_tokens(me, project)
    if json_output:
        out.print_json(render.dumps([_token_document(t) for t in found]))
        return
    table = Table(box=None, pad_edge=False)
    for name in ("TOKEN_ID", "PROJECT", "ROLE", "SUBJECT", "CREATED", "EXPIRES", "STATE"):
        table.add_column(name, no_wrap=True)
    now = time.time()
    for t in found:
        state = "revoked" if t.revoked_at else "expired" if t.expires_at <= now else "valid"
        table.add_row(
            t.token_id,
            t.project,
            str(t.role),
            t.subject,
            render.when(t.created_at),
            render.when(t.expires_at),
            state,
        )
    out.print(table)


@token_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="Token id, from 'token list'.")]) -> None:
    """Revoke a token: it stops working at once."""
    with local_service() as (service, me):
        record = service.revoke_token(me, token_id)
    out.print(f"{record.token_id}: revoked")


def _token_document(record: TokenRecord) -> dict[str, object]:
    document = dataclasses.asdict(record)
    document.pop("token_hash")  # not secret, but of no use outside the store
    return document


# -- audit -----------------------------------------------------------------------------------


def _since(text: str) -> float:
    """``1h`` (that long ago) or a Unix time."""
    try:
        return time.time() - parse_duration_s(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (e.g. 1h, 7d: that long ago) nor a Unix time"
        ) from None


@audit_app.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option(help="Only what this subject did.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. job.cancel.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    since: Annotated[
        float | None,
        typer.Option(parser=_since, metavar="WHEN", help="Only since: 1h, 7d (ago) or Unix time."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N records.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """Audit records, oldest first: who did what, when, from where, and the outcome."""
    query = AuditFilter(actor=actor, action=action, project=project, since=since, limit=limit)
    with local_service() as (service, me):
        found = service.audit_list(me, query)
    if json_output:
        out.print_json(render.dumps([dataclasses.asdict(r) for r in found]))
        return
    out.print(_audit_table(found))


def _audit_table(records: list[AuditRecord]) -> Table:
    table = Table(box=None, pad_edge=False)
    for name in ("SEQ", "AT", "ACTOR", "VIA", "FROM", "ACTION", "TARGET", "PROJECT", "OUTCOME"):
        table.add_column(name, no_wrap=True)
    for r in records:
        style = {"denied": "red", "error": "yellow"}.get(r.outcome)
        table.add_row(
            str(r.seq),
            render.when(r.at),
            r.actor,
            r.via,
            r.source,
            r.action,
            r.target or "-",
            r.project or "-",
            f"[{style}]{r.outcome}[/]" if style else r.outcome,
        )
    return table


@audit_app.command("verify")
def verify(json_output: JsonOpt = False) -> None:
    """Check the hash chain and the exported head; exit 1 naming the first bad record."""
    with local_service() as (service, me):
        report = service.audit_verify(me)
        head_path = service.auditor.head_path
    if json_output:
        out.print_json(render.dumps(dataclasses.asdict(report)))
    elif report.intact:
        anchored = (
            f"ends at the exported head (record {report.head.seq})"
            if report.head is not None
            else f"no exported head at {head_path} to check its end against"
        )
        out.print(f"audit log intact: {report.records} records; {anchored}")
    else:
        where = f"record {report.first_bad_seq}" if report.first_bad_seq else "the head"
        typer.echo(f"error: audit log broken at {where}: {report.problem}", err=True)
    if not report.intact:
        raise typer.Exit(EXIT_BROKEN)
