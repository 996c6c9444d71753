"""``hpcbridge token`` and ``hpcbridge audit`` through the installed entry point."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error


def _db(tmp_path: Path) -> Path:
    return tmp_path / "home" / "hpcbridge.db"


def test_create_prints_the_token_once_list_never_shows_it_revoke_ends_it(
    hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    created = hpcbridge(
        "token", "create", "--project", "climate", "--role", "member", "--ttl", "8h"
    )
    assert created.returncode == 0, created.stderr
    raw = created.stdout.strip()
    assert raw.startswith("hpcb_") and "\n" not in raw
    assert "shown once" in created.stderr and raw not in created.stderr
    token_id = created.stderr.split(":")[0]

    listed = hpcbridge("token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [record] = json.loads(listed.stdout)
    assert (record["token_id"], record["project"], record["role"]) == (
        token_id,
        "climate",
        "member",
    )
    assert raw not in listed.stdout and "token_hash" not in record
    assert token_id in hpcbridge("token", "list").stdout

    revoked = hpcbridge("token", "revoke", token_id)
    assert revoked.returncode == 0 and f"{token_id}: revoked" in revoked.stdout
    assert json.loads(hpcbridge("token", "list", "--json").stdout)[0]["revoked_at"] is not None
    with sqlite3.connect(_db(tmp_path)) as conn:
        dump = "\n".join(conn.iterdump())
    assert raw.removeprefix("hpcb_") not in dump

    missing = hpcbridge("token", "revoke", "tnothere")
    assert missing.returncode == 3 and "no token 'tnothere'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--project", "p", "--role", "boss", "--ttl", "8h"], "admin, operator, member, viewer"),
        (["--project", "p", "--role", "member", "--ttl", "soon"], "soon"),
        (["--project", "p", "--role", "member", "--ttl", "-1h"], "-1h"),
        (["--project", " ", "--role", "member", "--ttl", "8h"], "--project climate"),
        (["--role", "member", "--ttl", "8h"], "--project"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(
    hpcbridge: RunHpcbridge, args: list[str], named: str
) -> None:
    line = assert_one_line_usage_error(hpcbridge("token", "create", *args))
    assert named in line


def test_audit_lists_and_verifies_and_finds_tampering(
    hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    for project in ("a", "b"):
        assert (
            hpcbridge(
                "token", "create", "--project", project, "--role", "viewer", "--ttl", "1h"
            ).returncode
            == 0
        )
    listed = json.loads(hpcbridge("audit", "list", "--json").stdout)
    assert [(r["seq"], r["action"], r["outcome"]) for r in listed] == [
        (1, "token.create", "ok"),
        (2, "token.create", "ok"),
    ]
    assert [
        r["project"]
        for r in json.loads(hpcbridge("audit", "list", "--project", "b", "--json").stdout)
    ] == ["b"]
    assert hpcbridge("audit", "list", "--action", "job.cancel", "--json").stdout.strip() == "[]"
    assert len(json.loads(hpcbridge("audit", "list", "--since", "1h", "--json").stdout)) == 2
    table = hpcbridge("audit", "list").stdout
    assert "token.create" in table and "local" in table

    intact = hpcbridge("audit", "verify")
    assert intact.returncode == 0 and "intact: 2 records" in intact.stdout

    with sqlite3.connect(_db(tmp_path)) as conn:
        conn.execute("UPDATE audit SET project = 'c' WHERE seq = 2")
    broken = hpcbridge("audit", "verify")
    assert broken.returncode == 1
    assert broken.stderr.startswith("error: audit log broken at record 2:")

    bad_since = assert_one_line_usage_error(hpcbridge("audit", "list", "--since", "yesterday"))
    assert "yesterday" in bad_since
