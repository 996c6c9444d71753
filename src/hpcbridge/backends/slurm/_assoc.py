"""Preflight of a spec's Slurm ``account`` and ``qos`` against the user's associations.

``sacctmgr show assoc user=U format=account,qos -P`` lists, one line per association, an
account and the QOS it allows (comma-separated; empty: inherited, not checked here).
"""

from __future__ import annotations

from collections.abc import Mapping

from hpcbridge.spec import JobSpec


def assoc_argv(user: str) -> list[str]:
    return ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", "format=account,qos"]


def parse_assoc(text: str) -> dict[str, frozenset[str]]:
    """Account -> the QOS its associations allow (empty set: not listed)."""
    allowed: dict[str, set[str]] = {}
    for line in text.splitlines():
        account, _, qos = line.strip().partition("|")
        if not account:
            continue
        allowed.setdefault(account, set()).update(q for q in qos.split(",") if q)
    return {account: frozenset(qos) for account, qos in allowed.items()}


def check_assoc(
    spec: JobSpec, allowed: Mapping[str, frozenset[str]], *, user: str, cluster: str
) -> list[str]:
    """Problems with ``spec.account``/``spec.qos`` for ``user`` on ``cluster``."""
    problems: list[str] = []
    accounts = sorted(allowed)
    if spec.account is not None and spec.account not in allowed:
        problems.append(
            f"account: user {user!r} may not use account {spec.account!r} on cluster "
            f"{cluster}; use one of {', '.join(accounts) or '(none)'}, or ask a Slurm "
            "administrator to add the association (sacctmgr add user ... account=...)"
        )
        return problems
    if spec.qos is None:
        return problems
    chosen = [spec.account] if spec.account is not None else accounts
    listed = [allowed[a] for a in chosen if allowed[a]]
    if listed and not any(spec.qos in qos for qos in listed):
        usable = sorted(set().union(*listed))
        where = f"account {spec.account!r}" if spec.account else f"user {user!r}"
        problems.append(
            f"qos: {where} may not use QOS {spec.qos!r} on cluster {cluster}; use one of "
            f"{', '.join(usable)}, or ask a Slurm administrator to allow it"
        )
    return problems
