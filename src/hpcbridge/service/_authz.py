"""Object-level checks: what a principal may see and do to a job or token.

An object of a project the principal has no role in is answered as absent (NotFoundError
with the message an unknown id gets), so that ids of other projects cannot be probed.
"""

from __future__ import annotations

from hpcbridge.errors import ForbiddenError, NotFoundError
from hpcbridge.security import SITE, Permission, Principal, Role
from hpcbridge.store import Job


def hidden_job(job_id: str) -> NotFoundError:
    return NotFoundError(f"no job {job_id!r}", hint="see 'hpcbridge list'")


def readable(principal: Principal, job: Job, job_id: str) -> Job:
    if not principal.can(Permission.READ, job.project):
        raise hidden_job(job_id)
    return job


def require(principal: Principal, permission: Permission, project: str, what: str) -> None:
    """ForbiddenError naming the role needed, unless the principal has it in ``project``."""
    if principal.can(permission, project):
        return
    held = principal.role_in(project)
    has = f"has role {held} there" if held else "has no role there"
    raise ForbiddenError(
        f"{principal.subject} may not {what} in project {project!r}: it {has}",
        hint="ask an admin of the project for a token with a role that allows it",
    )


def require_manage(principal: Principal, job: Job, what: str) -> None:
    """Operators and admins manage any job of the project; members only their own."""
    if principal.can(Permission.MANAGE_ANY, job.project):
        return
    if principal.can(Permission.MANAGE_OWN, job.project) and job.owner == principal.subject:
        return
    if principal.can(Permission.MANAGE_OWN, job.project):
        raise ForbiddenError(
            f"{principal.subject} may not {what} job {job.job_id}: it belongs to "
            f"{job.owner or 'nobody recorded'}, and members manage only their own jobs",
            hint="ask an operator of the project",
        )
    require(principal, Permission.MANAGE_OWN, job.project, f"{what} jobs")


def check_priority(principal: Principal, project: str, priority: int) -> None:
    cap = principal.priority_cap(project)
    if cap is not None and priority > cap:
        raise ForbiddenError(
            f"priority {priority} is above {cap}, the most role "
            f"{principal.role_in(project) or 'none'} may ask for in project {project!r}",
            hint=f"set priority to {cap} or less, or ask an operator or admin to submit it",
        )


def require_site(principal: Principal, least: Role, what: str) -> None:
    """Site-wide actions (nodes belong to no project) need a role on project '*'."""
    role = principal.site_role()
    if role is not None and role.at_least(least):
        return
    raise ForbiddenError(
        f"{principal.subject} may not {what}: it needs role {least} or above on project "
        f"{SITE!r} (the whole site)",
        hint="ask a platform admin",
    )


def grantable(principal: Principal, project: str, role: Role) -> None:
    """Token creation: a project admin grants roles in its project; '*' needs the platform."""
    if project == SITE and not principal.platform_admin:
        raise ForbiddenError(
            f"{principal.subject} may not create tokens for every project ('*')",
            hint="a platform admin can",
        )
    require(principal, Permission.TOKENS, project, f"create {role} tokens")
