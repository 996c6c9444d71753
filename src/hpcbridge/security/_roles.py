"""Who is asking (``Principal``) and what each role may do in a project.

Roles are granted per project. A role on the project ``*`` (``SITE``) holds in every
project: an admin there is a platform admin, an operator there a site operator (who may
also drain and resume nodes, which belong to no project).
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

SITE = "*"
"""The project name of roles that hold in every project."""


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}

PRIORITY_CAPS: Mapping[Role, int | None] = MappingProxyType(
    {Role.VIEWER: 0, Role.MEMBER: 0, Role.OPERATOR: 100, Role.ADMIN: None}
)
"""The highest job priority each role may ask for (None: any)."""


class Permission(StrEnum):
    READ = "read"  # jobs, attempts, events, logs, why, SLO report of the project
    SUBMIT = "submit"
    MANAGE_OWN = "manage_own"  # cancel/requeue one's own jobs
    MANAGE_ANY = "manage_any"  # cancel/requeue anyone's jobs in the project
    TOKENS = "tokens"  # create, list and revoke the project's tokens
    AUDIT = "audit"  # read and verify the project's audit records


_LEAST_ROLE: Mapping[Permission, Role] = MappingProxyType(
    {
        Permission.READ: Role.VIEWER,
        Permission.SUBMIT: Role.MEMBER,
        Permission.MANAGE_OWN: Role.MEMBER,
        Permission.MANAGE_ANY: Role.OPERATOR,
        Permission.TOKENS: Role.ADMIN,
        Permission.AUDIT: Role.ADMIN,
    }
)


def role_allows(role: Role, permission: Permission) -> bool:
    return role.at_least(_LEAST_ROLE[permission])


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a subject, its roles per project, and how it proved it."""

    subject: str
    platform_admin: bool = False
    roles: Mapping[str, Role] = field(default_factory=dict)
    via: str = "local"
    source: str = "local"
    """Where the call came from: a client address, or ``local``."""

    @classmethod
    def local_user(cls) -> Principal:
        """Embedded mode: the user who owns the data directory, with every right in it."""
        try:
            subject = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            subject = "local"
        return cls(subject=subject, platform_admin=True, via="local")

    def role_in(self, project: str) -> Role | None:
        """The strongest role this principal holds in ``project`` (site roles included)."""
        if self.platform_admin:
            return Role.ADMIN
        held = [r for p, r in self.roles.items() if p in (project, SITE)]
        return max(held, key=lambda r: r.rank, default=None)

    def can(self, permission: Permission, project: str) -> bool:
        role = self.role_in(project)
        return role is not None and role_allows(role, permission)

    def site_role(self) -> Role | None:
        """The role that holds everywhere (platform admin: admin)."""
        return Role.ADMIN if self.platform_admin else self.roles.get(SITE)

    def visible_projects(self) -> frozenset[str] | None:
        """Projects whose objects this principal may read; None: all of them."""
        if self.site_role() is not None:
            return None
        return frozenset(self.roles)

    def priority_cap(self, project: str) -> int | None:
        """The highest priority this principal may give a job in ``project``."""
        role = self.role_in(project)
        return 0 if role is None else PRIORITY_CAPS[role]
