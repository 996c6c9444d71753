"""``hpcbridge cost cards|report`` through the installed entry point."""

from __future__ import annotations

import csv
import getpass
import io
import json
from pathlib import Path

import pytest

from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error

CARD = (
    "cluster: local\nversion: v1\neffective_from: 2020-01-01\ncurrency: EUR\n"
    "partitions: {'*': {core_hour: 3600}}\n"
)


def _home(tmp_path: Path) -> Path:
    cards = tmp_path / "home" / "rate_cards"
    cards.mkdir(parents=True)
    (cards / "local-v1.yaml").write_text(CARD)
    return tmp_path / "home"


def _spec(tmp_path: Path, name: str, argv: str, team: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"apiVersion: hpcbridge/v1\nkind: Job\nname: {name}\nproject: p-{team}\n"
        f"tags: {{team: {team}}}\ncommand: {argv}\nretry: {{max_attempts: 1}}\n"
    )
    return path


def test_report_groups_spend_waste_and_cost_per_result(
    hpcbridge: RunHpcbridge, tmp_path: Path
) -> None:
    _home(tmp_path)
    assert hpcbridge("run", str(_spec(tmp_path, "ok", "[sleep, '0.3']", "red"))).returncode == 0
    assert (
        hpcbridge(
            "run", str(_spec(tmp_path, "bad", "[sh, -c, 'sleep 0.3; exit 3']", "red"))
        ).returncode
        != 0
    )
    assert hpcbridge("run", str(_spec(tmp_path, "ok2", "['true']", "blue"))).returncode == 0

    result = hpcbridge("cost", "report", "--by", "team", "--since", "1h", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    rows = {row["group"]: row for row in document["rows"]}
    assert document["currency"] == "EUR" and document["cards"] == ["local/v1"]
    red = rows["red"]
    assert (red["attempts"], red["results"]) == (2, 1)
    assert red["waste"] > 0 and red["spend"] > red["waste"]
    # 1 core at 3600 per core-hour: one unit per second run
    assert red["spend"] == pytest.approx(red["core_hours"] * 3600, rel=1e-2)
    assert red["cost_per_result"] == red["spend"]
    assert document["total"]["attempts"] == 3

    users = json.loads(hpcbridge("cost", "report", "--by", "user", "--json").stdout)
    assert [row["group"] for row in users["rows"]] == [getpass.getuser()]  # the submitter

    table = hpcbridge("cost", "report", "--by", "project")
    assert table.returncode == 0 and "p-red" in table.stdout and "total" in table.stdout
    sheet = hpcbridge("cost", "report", "--by", "tag:team", "--csv")
    parsed = list(csv.DictReader(io.StringIO(sheet.stdout)))
    assert [row["tag:team"] for row in parsed][-1] == "total"
    assert {row["currency"] for row in parsed} == {"EUR"}


def test_cards_are_listed(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    _home(tmp_path)
    listed = json.loads(hpcbridge("cost", "cards", "--json").stdout)
    assert [(c["card"], c["effective_from"]) for c in listed] == [("local/v1", "2020-01-01 00:00")]


def test_bad_input_is_one_line_and_exit_2(hpcbridge: RunHpcbridge, tmp_path: Path) -> None:
    home = _home(tmp_path)
    line = assert_one_line_usage_error(hpcbridge("cost", "report", "--by", "colour"))
    assert "use one of project, team, user, workload_class or tag:<key>" in line
    line = assert_one_line_usage_error(hpcbridge("cost", "report", "--since", "yesterday"))
    assert "--since 'yesterday' is neither a date nor a duration" in line
    (home / "rate_cards" / "broken.yaml").write_text("cluster: x\nversion: v\n")
    line = assert_one_line_usage_error(hpcbridge("cost", "cards"))
    assert "broken.yaml" in line and "effective_from: required field is missing" in line
