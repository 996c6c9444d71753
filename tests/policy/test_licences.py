"""Licence pool files and server health: failover order, capacity, cached checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from hpcbridge.errors import ConfigError
from hpcbridge.policy import (
    LicenceMonitor,
    LicencePool,
    LicenceServer,
    load_licence_pools,
    over_total,
)
from hpcbridge.policy._licences import run_check


class Checks:
    """Health checks by argv[0]: which servers are up, and how often each was asked."""

    def __init__(self, up: set[str]) -> None:
        self.up = up
        self.asked: list[str] = []

    def __call__(self, argv: Sequence[str], timeout_s: float) -> bool:
        self.asked.append(argv[0])
        return argv[0] in self.up


def pool(*servers: tuple[str, int | None], total: int = 4, interval: float = 60) -> LicencePool:
    return LicencePool(
        name="fluent",
        total=total,
        check_interval_s=interval,
        servers=tuple(LicenceServer(name=n, check=(n,), count=c) for n, c in servers),
    )


def test_a_healthy_first_server_serves_the_pool_and_the_next_is_not_asked() -> None:
    checks = Checks({"a", "b"})
    health = LicenceMonitor({"fluent": pool(("a", None), ("b", None))}, checks)
    found = health.health(["fluent"], 0.0)["fluent"]
    assert (found.capacity, found.servers, found.down_since) == (4, ("a",), None)
    assert checks.asked == ["a"]


def test_a_failed_server_fails_over_to_the_next() -> None:
    checks = Checks({"b"})
    found = LicenceMonitor({"fluent": pool(("a", None), ("b", None))}, checks).health(
        ["fluent"], 0.0
    )["fluent"]
    assert (found.capacity, found.servers) == (4, ("b",))
    assert checks.asked == ["a", "b"]


def test_split_servers_add_up_and_losing_one_shrinks_the_pool() -> None:
    monitor = LicenceMonitor({"fluent": pool(("a", 2), ("b", 2))}, Checks({"a"}))
    assert monitor.health(["fluent"], 0.0)["fluent"].capacity == 2


def test_checks_are_cached_and_down_since_is_the_first_failure() -> None:
    checks = Checks(set())
    monitor = LicenceMonitor({"fluent": pool(("a", None), interval=60)}, checks)
    assert monitor.health(["fluent"], 100.0)["fluent"].down_since == 100.0
    assert monitor.health(["fluent"], 130.0)["fluent"].down_since == 100.0
    assert checks.asked == ["a"]  # within the interval: the cached answer
    checks.up.add("a")
    assert monitor.health(["fluent"], 170.0)["fluent"].down_since is None
    assert checks.asked == ["a", "a"]


def test_a_real_check_exits_0_within_its_timeout() -> None:
    assert run_check(["true"], 5)
    assert not run_check(["false"], 5)
    assert not run_check(["sleep", "5"], 0.2)
    assert not run_check(["/nonexistent/licence-check"], 5)


def test_the_file_is_validated_with_errors_that_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "pools.yaml"
    assert load_licence_pools(path) == {}
    path.write_text("pools:\n  - {name: fluent, total: 4, servers: [{name: a, check: [x]}]}\n")
    assert load_licence_pools(path)["fluent"].total == 4
    path.write_text("pools:\n  - {name: fluent, total: 0, servers: [{name: a, check: [x]}]}\n")
    with pytest.raises(ConfigError, match=r"pools\.0\.total"):
        load_licence_pools(path)
    twice = "  - {name: fluent, total: 1, servers: [{name: a, check: [x]}]}\n"
    path.write_text("pools:\n" + twice * 2)
    with pytest.raises(ConfigError, match="pool names must be unique; fluent appear twice"):
        load_licence_pools(path)
    path.write_text("pools: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read it as YAML"):
        load_licence_pools(path)


def test_requests_over_a_pool_total_are_named() -> None:
    pools = {"fluent": pool(("a", None))}
    assert over_total({"fluent": 4, "other": 99}, pools) == []
    (problem,) = over_total({"fluent": 5}, pools)
    assert problem == "licences.fluent: asks for 5 but the pool fluent holds 4; ask for at most 4"
