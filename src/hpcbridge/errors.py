"""The one exception tree of hpcbridge.

Every error carries a user-facing message that says what failed, on which object and how
to fix it. Errors become wire formats in exactly two places: exit codes plus one line in
the CLI, and problem+json in the API.

    HpcbridgeError
    ├── SpecError                  invalid job spec (exit code 2)
    │   └── UnsupportedFieldError  a valid field that the chosen backend cannot honour
    ├── ConfigError                invalid settings (exit code 2)
    ├── InvalidRequestError        a malformed argument: a cursor, a limit (exit code 2, HTTP 400)
    ├── NotFoundError              unknown job, attempt or cluster, or one of another
    │                              project (answered as if absent; exit code 3, HTTP 404)
    ├── AuthenticationError        no valid credentials (one message for every cause; HTTP 401)
    ├── ForbiddenError             the principal's role does not allow it (exit code 4, HTTP 403)
    ├── QuotaExceededError         a project quota or rate limit; retry after ``retry_after_s``
    │                              (exit code 5, HTTP 429 with Retry-After)
    ├── IdempotencyConflictError   a key reused with another request (exit code 2, HTTP 409)
    ├── ArrayShapeError            tasks differ and cannot share one native array (nothing sent)
    ├── StoreError
    │   ├── InvalidTransitionError the state machine forbids the change
    │   ├── ConflictError          optimistic version check failed; reload and retry
    │   └── FencedError            a newer leader holds the lease: this one's writes are refused
    └── BackendError               a scheduler call failed
        ├── TransientBackendError  worth retrying later (scheduler slow or down)
        │   └── UncertainSubmissionError  the call may have reached the scheduler: look first
        └── PermanentBackendError  retrying the same call cannot help
"""

from __future__ import annotations

from collections.abc import Sequence


class HpcbridgeError(Exception):
    """Base of every error hpcbridge raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class SpecError(HpcbridgeError):
    """The job spec is invalid; ``problems`` lists each as ``path: message``."""

    exit_code = 2

    def __init__(self, message: str, *, problems: Sequence[str] = (), hint: str | None = None):
        self.problems = list(problems)
        super().__init__(message, hint=hint)


class UnsupportedFieldError(SpecError):
    """A field is valid but the backend that would run the job cannot honour it yet."""


class ConfigError(HpcbridgeError):
    exit_code = 2


class InvalidRequestError(HpcbridgeError):
    """An argument of a request is malformed (not a job spec: those are SpecError)."""

    exit_code = 2


class NotFoundError(HpcbridgeError):
    exit_code = 3


class AuthenticationError(HpcbridgeError):
    """The credentials are missing, unknown, expired, revoked or do not verify. The message
    is the same whatever the cause, so that a caller learns nothing about which it was."""

    exit_code = 4
    MESSAGE = "authentication failed: the token is missing, invalid, expired or revoked"

    def __init__(self) -> None:
        super().__init__(self.MESSAGE, hint="create a new token ('hpcbridge token create')")


class ForbiddenError(HpcbridgeError):
    """The principal is known but its role does not allow the action."""

    exit_code = 4


class QuotaExceededError(HpcbridgeError):
    """A project's quota or rate limit refuses the request for now."""

    exit_code = 5

    def __init__(self, message: str, *, retry_after_s: float, hint: str | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, hint=hint or f"retry in {retry_after_s:.0f} s")


class IdempotencyConflictError(HpcbridgeError):
    """An idempotency key already names a job submitted with a different spec."""

    exit_code = 2

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(
            f"idempotency key {key!r} already names job {job_id}, submitted with a different spec",
            hint=f"use a new key for a new request, or see 'hpcbridge status {job_id}'",
        )


class ArrayShapeError(HpcbridgeError):
    """Array tasks prepared together differ in resources or placement, so they cannot go
    to the scheduler as one native array. Raised before any scheduler call: nothing was
    sent, and the tasks may be submitted one by one instead."""


class StoreError(HpcbridgeError):
    pass


class InvalidTransitionError(StoreError):
    pass


class ConflictError(StoreError):
    """Someone else changed the record first; reload it and decide again."""


class FencedError(StoreError):
    """A write carried a lease epoch older than the newest one: another process became the
    leader meanwhile. Stop writing as the leader and try to acquire the lease again."""


class BackendError(HpcbridgeError):
    """A scheduler call failed. ``argv``/``returncode``/``stderr`` say which and how."""

    transient = False

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stdout: str = "",
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(message, hint=hint)


class TransientBackendError(BackendError):
    transient = True


class UncertainSubmissionError(TransientBackendError):
    """A submission call failed in a way that leaves open whether the scheduler took the
    job (a timeout, a reply that could not be read, an unexpected error). Before trying
    again, look for the job by its token."""


class PermanentBackendError(BackendError):
    transient = False
