"""Retention: where a finished job's files are, and ``gc``, which removes them (and the
events nothing reads any more) once the job is past a retention period.

What SLOs, metrics and cost need stays: job and attempt rows, and the events the SLO
evaluator and the metrics fold read (``KEPT_EVENT_KINDS``). Nothing of a job that has not
finished, nor of one that finished inside the period, is touched; ``plan_gc`` changes
nothing, and ``apply_gc`` removes what the plan lists.
"""

from hpcbridge.retention._files import AttemptFiles, attempt_files
from hpcbridge.retention._gc import (
    KEPT_EVENT_KINDS,
    GcPlan,
    GcResult,
    Removal,
    apply_gc,
    plan_gc,
)

__all__ = [
    "KEPT_EVENT_KINDS",
    "AttemptFiles",
    "GcPlan",
    "GcResult",
    "Removal",
    "apply_gc",
    "attempt_files",
    "plan_gc",
]
