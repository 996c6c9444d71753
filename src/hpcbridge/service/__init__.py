"""The application service layer: every use case as one method taking a principal.

``Service`` authorizes (roles per project, object-level checks), changes state and writes
the hash-chained audit record in one transaction. The CLI, the REST API and the Python
client are thin callers of it.
"""

from hpcbridge.policy import Quotas
from hpcbridge.service._audit import Auditor
from hpcbridge.service._pages import MAX_PAGE, Page
from hpcbridge.service._quotas import requested_core_hours
from hpcbridge.service._service import AUDIT_HEAD_FILE, Service, oidc_from_settings
from hpcbridge.service._why import (
    Explanation,
    describe_exit,
    duration_text,
    explain,
    job_cost_text,
)

__all__ = [
    "AUDIT_HEAD_FILE",
    "MAX_PAGE",
    "Auditor",
    "Explanation",
    "Page",
    "Quotas",
    "Service",
    "describe_exit",
    "duration_text",
    "explain",
    "job_cost_text",
    "oidc_from_settings",
    "requested_core_hours",
]
