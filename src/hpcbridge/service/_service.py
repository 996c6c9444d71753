"""The use cases of hpcbridge, each taking the principal that asks first.

Every use case authorizes before it reads or changes anything; every mutating one changes
state and writes its audit record in one store transaction (``Auditor.audited``). The CLI
(embedded mode, as ``Principal.local_user()``), the REST API and the Python client call
these and only render what they return.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hpcbridge.backends.slurm import NodeRecord, SlurmBackend
from hpcbridge.client import Client
from hpcbridge.config import Settings
from hpcbridge.errors import (
    AuthenticationError,
    ForbiddenError,
    HpcbridgeError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
)
from hpcbridge.security import (
    SITE,
    AuditFilter,
    AuditRecord,
    ChainReport,
    OidcVerifier,
    Outcome,
    Permission,
    Principal,
    Role,
    TokenRecord,
    TokenService,
    looks_like_token,
    read_head,
    verify_chain,
)
from hpcbridge.service import _authz as authz
from hpcbridge.service._audit import Auditor, Note
from hpcbridge.service._pages import Page, check_limit, decode_cursor, page_of
from hpcbridge.service._quotas import check_submission
from hpcbridge.service._why import Explanation, explain
from hpcbridge.slo import (
    DEFAULT_RUNBOOK_BASE,
    SloDefinition,
    SloStatus,
    build_samples_by_slo,
    default_slos,
    finished_jobs,
    slo_report,
)
from hpcbridge.spec import JobSpec, task_count
from hpcbridge.states import JobState
from hpcbridge.store import Attempt, Event, Job, JobFilter, Store

AUDIT_HEAD_FILE = "audit.head"


def oidc_from_settings(settings: Settings) -> OidcVerifier | None:
    if not settings.oidc_issuer:
        return None
    return OidcVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience or "",
        jwks=settings.oidc_jwks or "",
        roles_claim=settings.oidc_roles_claim,
        subject_claim=settings.oidc_subject_claim,
        cache_s=settings.oidc_jwks_cache_s,
    )


class Service:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        client: Client | None = None,
        clock: Callable[[], float] = time.time,
        oidc: OidcVerifier | None = None,
        slurm: Callable[[], SlurmBackend] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.client = client or Client(settings, store=store, clock=clock)
        self._clock = clock
        self.tokens = TokenService(store, clock=clock)
        self._oidc = oidc if oidc is not None else oidc_from_settings(settings)
        self.auditor = Auditor(store, settings.home / AUDIT_HEAD_FILE, clock)
        self._slurm = slurm or (lambda: SlurmBackend(settings))
        self.quotas = self.client.quotas

    # -- who is asking -----------------------------------------------------------------------

    def authenticate(self, raw: str, *, source: str = "local") -> Principal:
        """The principal of an opaque token or (when configured) an OIDC JWT; one
        AuthenticationError for every failure."""
        if looks_like_token(raw):
            return self.tokens.authenticate(raw, source=source)
        if self._oidc is not None and raw.count(".") == 2:
            return self._oidc.authenticate(raw, source=source)
        raise AuthenticationError()

    # -- jobs --------------------------------------------------------------------------------

    def submit(
        self, principal: Principal, spec: JobSpec, *, idempotency_key: str | None = None
    ) -> Job:
        """Accept a job in ``spec.project`` owned by the principal. Refused (and audited) if
        the principal may not submit there, asks for a priority above its role's cap, or the
        project is over a quota (QuotaExceededError says when to retry)."""
        note = Note(project=spec.project, details={"name": spec.name, "priority": spec.priority})
        if idempotency_key is not None:
            note.details["idempotency_key"] = idempotency_key
        try:  # outside the transaction: the checks may ask the scheduler, git runs
            self._authorize_submit(principal, spec, idempotency_key)
            retried = idempotency_key is not None and (
                self.store.find_by_idempotency_key(idempotency_key) is not None
            )
            prepared = None
            if not retried:
                prepared = self.client.prepare(
                    [spec], idempotency_key=idempotency_key, actor=principal.subject
                )
        except HpcbridgeError as exc:
            self.auditor.refused(principal, "job.submit", note, exc)
            raise
        with self.auditor.audited(principal, "job.submit") as inside:
            inside.project, inside.details = note.project, note.details
            self._authorize_submit(principal, spec, idempotency_key)
            if prepared is not None:  # a retried submission is no new work
                tasks = task_count(spec.array) if spec.array else 0
                now, document = self._clock(), spec.to_document()
                quotas = self.quotas.of(spec.project)
                check_submission(self.store, quotas, spec.project, document, tasks, now)
            job = self.client.submit(
                spec,
                idempotency_key=idempotency_key,
                actor=principal.subject,
                prepared=prepared,
            )
            inside.target = job.job_id
        return job

    def _authorize_submit(
        self, principal: Principal, spec: JobSpec, idempotency_key: str | None
    ) -> None:
        authz.require(principal, Permission.SUBMIT, spec.project, "submit jobs")
        authz.check_priority(principal, spec.project, spec.priority)
        if idempotency_key is not None:
            self._check_key_owner(principal, idempotency_key)

    def _check_key_owner(self, principal: Principal, key: str) -> None:
        existing = self.store.find_by_idempotency_key(key)
        if existing is not None and existing.owner != principal.subject:
            raise ForbiddenError(
                f"idempotency key {key!r} is already used by another principal",
                hint="use a key of your own (a fresh UUID)",
            )

    def get(self, principal: Principal, job_id: str) -> Job:
        try:
            job = self.client.get(job_id)
        except NotFoundError:
            if principal.visible_projects() is None:
                raise  # it sees every project: nothing to hide, and the precise answer helps
            raise authz.hidden_job(job_id) from None
        return authz.readable(principal, job, job_id)

    def tasks(self, principal: Principal, job_id: str) -> list[Job]:
        self.get(principal, job_id)
        return self.client.tasks(job_id)

    def list_jobs(
        self,
        principal: Principal,
        query: JobFilter | None = None,
        *,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Job]:
        """Jobs the principal may see, newest first, ``limit`` at a time; pass the page's
        ``next_cursor`` for the next one."""
        check_limit(limit)
        query = query or JobFilter(top_level_only=True)
        visible = principal.visible_projects()
        if visible is not None:
            visible = visible if query.projects is None else visible & query.projects
        elif query.projects is not None:
            visible = query.projects
        query = dataclasses.replace(
            query,
            projects=visible,
            before=None if cursor is None else decode_cursor(cursor),
            limit=limit + 1,
        )
        return page_of(self.store.newest_jobs(query), limit)

    def attempts(self, principal: Principal, job_id: str) -> list[Attempt]:
        job = self.get(principal, job_id)
        return self.store.attempts(job.job_id)

    def events(self, principal: Principal, job_id: str, *, after_seq: int = 0) -> list[Event]:
        job = self.get(principal, job_id)
        return self.store.events(job.job_id, after_seq=after_seq)

    def log_paths(
        self, principal: Principal, job_id: str, attempt: int | None = None
    ) -> tuple[Path | None, Path | None]:
        job = self.get(principal, job_id)
        return self.client.log_paths(job.job_id, attempt)

    def why(self, principal: Principal, job_id: str) -> Explanation:
        """What happened to a job and what to do next (core-hours lost, checkpoints, ...)."""
        job = self.get(principal, job_id)
        return explain(self.client, job.job_id)

    def cancel(self, principal: Principal, job_id: str) -> Job:
        """Ask a job to stop (the reconciler carries it out). Members cancel their own jobs,
        operators and admins any of the project."""
        with self.auditor.audited(principal, "job.cancel", target=job_id) as note:
            job = self.get(principal, job_id)
            note.project = job.project
            authz.require_manage(principal, job, "cancel")
            job = self.client.cancel(job.job_id, actor=principal.subject)
            note.details = {"state": job.state.value}
        return job

    def requeue(self, principal: Principal, job_id: str) -> Job:
        """Retry a job waiting to be retried now instead of after its backoff."""
        with self.auditor.audited(principal, "job.requeue", target=job_id) as note:
            job = self.get(principal, job_id)
            note.project = job.project
            authz.require_manage(principal, job, "requeue")
            if job.state is not JobState.RETRY_WAIT:
                raise InvalidTransitionError(
                    f"job {job.job_id} is {job.state.value}; only a job waiting to be "
                    "retried (retry_wait) can be requeued",
                    hint="submit the spec again for a job that has finished",
                )
            now = self._clock()
            job = self.store.update_job(
                job.job_id, expected_version=job.version, now=now, next_attempt_at=now
            )
            self.store.add_event(job.job_id, "requeue_requested", now=now, actor=principal.subject)
        return job

    # -- nodes (site-wide) -------------------------------------------------------------------

    def nodes(self, principal: Principal, cluster: str | None = None) -> list[NodeRecord]:
        authz.require_site(principal, Role.VIEWER, "list the site's nodes")
        backend = self._slurm()
        try:
            return backend.nodes(cluster)
        finally:
            backend.close()

    def drain(
        self, principal: Principal, node: str, reason: str, cluster: str | None = None
    ) -> None:
        details = {"reason": reason, "cluster": cluster}
        self._node_action(
            principal, "node.drain", node, details, lambda b: b.drain(node, reason, cluster)
        )

    def resume(self, principal: Principal, node: str, cluster: str | None = None) -> None:
        details = {"cluster": cluster}
        self._node_action(
            principal, "node.resume", node, details, lambda b: b.resume(node, cluster)
        )

    def _node_action(
        self,
        principal: Principal,
        action: str,
        node: str,
        details: dict[str, Any],
        call: Callable[[SlurmBackend], Any],
    ) -> None:
        """Authorize, call the scheduler (outside any transaction: it may take seconds),
        then record the outcome, refused and failed calls included."""
        note = Note(target=node, details=details)
        try:
            authz.require_site(principal, Role.OPERATOR, f"{action.split('.')[1]} node {node}")
            backend = self._slurm()
            try:
                call(backend)
            finally:
                backend.close()
        except HpcbridgeError as exc:
            note.details = {**details, "error": exc.message}
            denied = isinstance(exc, ForbiddenError)
            self.auditor.record(
                principal, action, note, Outcome.DENIED if denied else Outcome.ERROR
            )
            raise
        self.auditor.record(principal, action, note, Outcome.OK)

    # -- SLOs --------------------------------------------------------------------------------

    def slo_report(
        self,
        principal: Principal,
        slos: Sequence[SloDefinition] | None = None,
        *,
        eval_interval_s: float = 60.0,
    ) -> list[SloStatus]:
        """Each SLO over the finished jobs of the projects the principal may read."""
        chosen = list(slos) if slos is not None else default_slos()
        now = self._clock()
        horizon = max(slo.window for slo in chosen)
        visible = principal.visible_projects()
        jobs = [
            j
            for j in finished_jobs(self.store, since=now - horizon)
            if visible is None or j.project in visible
        ]
        return slo_report(
            chosen,
            build_samples_by_slo(chosen, jobs),
            now,
            eval_interval_s=eval_interval_s,
            runbook_base=self.settings.runbook_url_base or DEFAULT_RUNBOOK_BASE,
        )

    # -- tokens ------------------------------------------------------------------------------

    def create_token(
        self,
        principal: Principal,
        project: str,
        role: Role,
        ttl_s: float,
        *,
        subject: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """A token for ``project`` and ``role``: the raw value (shown once) and its record."""
        role = Role(role)
        with self.auditor.audited(principal, "token.create") as note:
            note.project = project
            note.details = {"role": str(role), "ttl_s": ttl_s, "subject": subject}
            authz.grantable(principal, project, role)
            if ttl_s <= 0:
                raise _invalid_ttl(ttl_s)
            raw, record = self.tokens.create(
                project,
                role,
                ttl_s,
                subject or principal.subject,
                created_by=principal.subject,
            )
            note.target = record.token_id
        return raw, record

    def list_tokens(self, principal: Principal, project: str | None = None) -> list[TokenRecord]:
        """Tokens of the projects the principal administers (never the raw tokens)."""
        found = self.tokens.list(project)
        return [t for t in found if principal.can(Permission.TOKENS, t.project)]

    def revoke_token(self, principal: Principal, token_id: str) -> TokenRecord:
        with self.auditor.audited(principal, "token.revoke", target=token_id) as note:
            record = next((t for t in self.tokens.list() if t.token_id == token_id), None)
            if record is None or not principal.can(Permission.READ, record.project):
                raise NotFoundError(f"no token {token_id!r}", hint="see 'hpcbridge token list'")
            note.project = record.project
            if record.project == SITE and not principal.platform_admin:
                authz.grantable(principal, SITE, record.role)
            authz.require(principal, Permission.TOKENS, record.project, "revoke tokens")
            record = self.tokens.revoke(token_id)
        return record

    # -- audit -------------------------------------------------------------------------------

    def audit_list(
        self, principal: Principal, query: AuditFilter | None = None
    ) -> list[AuditRecord]:
        """Audit records a principal may read: all for platform admins, those of the
        projects it administers for project admins."""
        query = query or AuditFilter()
        if principal.platform_admin:
            return self.store.audit_records(query)
        allowed = frozenset(p for p, r in principal.roles.items() if r is Role.ADMIN)
        if not allowed:
            raise ForbiddenError(
                f"{principal.subject} may not read the audit log: it administers no project",
                hint="ask an admin of the project",
            )
        if query.projects is not None:
            allowed &= query.projects
        return self.store.audit_records(dataclasses.replace(query, projects=allowed))

    def audit_verify(self, principal: Principal) -> ChainReport:
        """Check the whole chain against the exported head (platform admins only: the
        chain spans every project)."""
        if not principal.platform_admin:
            raise ForbiddenError(
                f"{principal.subject} may not verify the audit log", hint="a platform admin can"
            )
        return verify_chain(self.store.audit_records(), read_head(self.auditor.head_path))

    def close(self) -> None:
        self.client.close()


def _invalid_ttl(ttl_s: float) -> InvalidRequestError:
    return InvalidRequestError(
        f"token lifetime {ttl_s:g} s is not positive", hint="give a ttl such as 8h or 7d"
    )
