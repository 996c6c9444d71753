"""The hash-chained audit log on SQLite and PostgreSQL: one record per mutating call,
allowed or denied, in the change's transaction; every kind of tampering is found by
verification, which names the first bad record."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from hpcbridge.config import Settings
from hpcbridge.errors import ForbiddenError, NotFoundError, SpecError
from hpcbridge.security import (
    GENESIS_HASH,
    SITE,
    AuditEntry,
    AuditFilter,
    Role,
    read_head,
    record_hash,
)
from hpcbridge.security import _audit as audit_module
from hpcbridge.security._audit import AuditHead, AuditRecord, as_entry, export_head
from hpcbridge.service import Service
from hpcbridge.spec import JobSpec
from hpcbridge.store import SqlStore, Store
from tests.service.conftest import (
    PLATFORM,
    Clock,
    FakeSlurm,
    make_service,
    open_test_store,
    principal,
)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Store]:
    opened = open_test_store(request, settings)
    yield opened
    opened.close()


@pytest.fixture
def logged(service: Service, make_spec: Callable[..., JobSpec]) -> Service:
    """Six records: submits, a cancel, a token, a denied cancel."""
    alice = principal("alice", {"a": Role.MEMBER})
    bob = principal("bob", {"a": Role.MEMBER})
    first = service.submit(alice, make_spec(project="a"))
    service.submit(alice, make_spec(project="a"))
    service.cancel(alice, first.job_id)
    service.create_token(PLATFORM, "a", Role.VIEWER, 60)
    with pytest.raises(ForbiddenError):
        service.cancel(bob, first.job_id)
    service.submit(bob, make_spec(project="a"))
    return service


def sql(service: Service, statement: str, **params: object) -> None:
    assert isinstance(service.store, SqlStore)
    with service.store.engine.begin() as conn:
        conn.execute(text(statement), params)


def verify(service: Service) -> tuple[bool, int | None]:
    report = service.audit_verify(PLATFORM)
    return report.intact, report.first_bad_seq


def test_each_mutating_call_has_one_record_and_the_chain_verifies(logged: Service) -> None:
    records = logged.audit_list(PLATFORM)
    assert [(r.actor, r.action, r.outcome) for r in records] == [
        ("alice", "job.submit", "ok"),
        ("alice", "job.submit", "ok"),
        ("alice", "job.cancel", "ok"),
        ("root-admin", "token.create", "ok"),
        ("bob", "job.cancel", "denied"),
        ("bob", "job.submit", "ok"),
    ]
    assert [r.seq for r in records] == list(range(1, 7))
    assert records[0].prev_hash == GENESIS_HASH
    assert verify(logged) == (True, None)
    head = read_head(logged.auditor.head_path)
    assert head is not None and (head.seq, head.hash) == (6, records[-1].hash)
    assert logged.auditor.head_path.stat().st_mode & 0o777 == 0o600


def test_a_denied_call_changes_nothing_but_is_recorded(
    service: Service, make_spec: Callable[..., JobSpec]
) -> None:
    viewer = principal("vic", {"a": Role.VIEWER})
    with pytest.raises(ForbiddenError):
        service.submit(viewer, make_spec(project="a"))
    with pytest.raises(NotFoundError):
        service.cancel(viewer, "jnothere00")
    assert service.list_jobs(PLATFORM).items == []
    found = [(r.action, r.outcome, r.project) for r in service.audit_list(PLATFORM)]
    assert found == [("job.submit", "denied", "a"), ("job.cancel", "denied", None)]


def test_filters(logged: Service, clock: Clock) -> None:
    def actions(**fields: object) -> list[str]:
        return [r.action for r in logged.audit_list(PLATFORM, AuditFilter(**fields))]  # type: ignore[arg-type]

    assert actions(actor="bob") == ["job.cancel", "job.submit"]
    assert actions(action="token.create") == ["token.create"]
    assert actions(project="b") == []
    assert len(actions(since=clock.now)) == 6
    assert actions(since=clock.now + 1) == []


def test_modified_record(logged: Service) -> None:
    sql(logged, "UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    assert verify(logged) == (False, 3)


def test_modified_details(logged: Service) -> None:
    sql(logged, """UPDATE audit SET details = '{"state":"x"}' WHERE seq = 3""")
    assert verify(logged) == (False, 3)


def test_deleted_record(logged: Service) -> None:
    sql(logged, "DELETE FROM audit WHERE seq = 2")
    assert verify(logged) == (False, 2)


def test_reordered_records(logged: Service) -> None:
    sql(logged, "UPDATE audit SET seq = 100 WHERE seq = 2")
    sql(logged, "UPDATE audit SET seq = 2 WHERE seq = 3")
    sql(logged, "UPDATE audit SET seq = 3 WHERE seq = 100")
    assert verify(logged) == (False, 2)


def test_inserted_record(logged: Service) -> None:
    # A forged record chained properly to its predecessor, with the later ones renumbered:
    # the record after it no longer chains to it.
    records = logged.audit_list(PLATFORM)
    forged = as_entry(records[2])
    sql(logged, "UPDATE audit SET seq = seq + 100 WHERE seq > 3")
    sql(logged, "UPDATE audit SET seq = seq - 99 WHERE seq > 100")
    sql(
        logged,
        "INSERT INTO audit (seq, at, actor, via, action, outcome, target, project, source, "
        "details, prev_hash, hash) VALUES (4, :at, 'mallory', 'token', 'job.cancel', 'ok', "
        "NULL, 'a', 'local', '{}', :prev, :hash)",
        at=forged.at,
        prev=records[2].hash,
        hash=record_hash(
            AuditEntry(**_fields(forged, actor="mallory", target=None, details={})),  # type: ignore[arg-type]
            4,
            records[2].hash,
        ),
    )
    assert verify(logged) == (False, 5)


def test_truncated_tail(logged: Service) -> None:
    sql(logged, "DELETE FROM audit WHERE seq >= 5")
    report = logged.audit_verify(PLATFORM)
    assert (report.intact, report.first_bad_seq) == (False, 5)
    assert "removed from its end" in (report.problem or "")


def test_whole_chain_rewritten_against_an_old_head(logged: Service) -> None:
    """Every record rewritten and re-chained (a valid chain on its own): the exported head
    still names the old hash of record 6."""
    records = logged.audit_list(PLATFORM)
    prev = GENESIS_HASH
    for record in records:
        entry = AuditEntry(**_fields(as_entry(record), actor="mallory"))  # type: ignore[arg-type]
        digest = record_hash(entry, record.seq, prev)
        sql(
            logged,
            "UPDATE audit SET actor = :actor, prev_hash = :prev, hash = :hash WHERE seq = :seq",
            actor=entry.actor,
            prev=prev,
            hash=digest,
            seq=record.seq,
        )
        prev = digest
    report = logged.audit_verify(PLATFORM)
    assert (report.intact, report.first_bad_seq) == (False, 6)
    assert "rewritten" in (report.problem or "")


def _fields(entry: object, **changes: object) -> dict[str, object]:
    names = ("at", "actor", "via", "action", "outcome", "target", "project", "source", "details")
    return {name: changes.get(name, getattr(entry, name)) for name in names}


def test_no_exported_head_still_checks_the_chain(logged: Service) -> None:
    logged.auditor.head_path.unlink()
    assert verify(logged) == (True, None)
    sql(logged, "UPDATE audit SET action = 'x' WHERE seq = 1")
    assert verify(logged) == (False, 1)


def test_concurrent_writers_never_fork_the_chain(
    store: Store, settings: Settings, clock: Clock, make_spec: Callable[..., JobSpec]
) -> None:
    services = [make_service(store, settings, clock) for _ in range(4)]
    alice = principal("alice", {"a": Role.MEMBER})

    def work(svc: Service) -> None:
        for _ in range(5):
            svc.submit(alice, make_spec(project="a"))

    threads = [threading.Thread(target=work, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify(services[0]) == (True, None)
    assert len(services[0].audit_list(PLATFORM)) == 20


def test_node_actions_are_recorded_after_the_scheduler_call(service: Service) -> None:
    FakeSlurm.calls.clear()
    operator = principal("ops", {SITE: Role.OPERATOR})
    service.drain(operator, "n1", "ECC errors")
    with pytest.raises(ForbiddenError):
        service.resume(principal("vic", {"a": Role.ADMIN}), "n1")
    service.resume(operator, "n1")
    assert FakeSlurm.calls == [("drain", "n1", "ECC errors"), ("resume", "n1")]
    found = [(r.actor, r.action, r.target, r.outcome) for r in service.audit_list(PLATFORM)]
    assert found == [
        ("ops", "node.drain", "n1", "ok"),
        ("vic", "node.resume", "n1", "denied"),
        ("ops", "node.resume", "n1", "ok"),
    ]
    assert service.audit_list(PLATFORM)[0].details == {"reason": "ECC errors", "cluster": None}


def test_an_invalid_spec_is_recorded_as_an_error_and_stores_nothing(
    service: Service, make_spec: Callable[..., JobSpec]
) -> None:
    alice = principal("alice", {"a": Role.MEMBER})
    with pytest.raises(SpecError):
        service.submit(alice, make_spec(project="a", resources={"cpus_per_task": 999}))
    assert service.list_jobs(PLATFORM).items == []
    [record] = service.audit_list(PLATFORM)
    assert (record.action, record.outcome, record.project) == ("job.submit", "error", "a")
    assert "cannot run" in record.details["error"]


def test_concurrent_exports_never_move_the_head_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each writer reads the head, then replaces it; slowed down, two writers that both
    # read an older head would leave the one that wrote last, possibly the older record.
    real_read = audit_module.read_head

    def slow_read(path: Path) -> AuditHead | None:
        head = real_read(path)
        time.sleep(0.002)
        return head

    monkeypatch.setattr(audit_module, "read_head", slow_read)
    head_path = tmp_path / "audit.head"
    records = [
        AuditRecord(
            seq,
            float(seq),
            "a",
            "cli",
            "job.submit",
            "allowed",
            None,
            None,
            "local",
            {},
            "0" * 64,
            f"{seq:064x}",
        )
        for seq in range(1, 121)
    ]
    random.Random(7).shuffle(records)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda record: export_head(head_path, record), records))
    head = real_read(head_path)
    assert head is not None and (head.seq, head.hash) == (120, f"{120:064x}")
