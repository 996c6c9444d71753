"""The reconciler: a level-triggered loop around the pure ``decide()``."""

from hpcbridge.reconciler._actions import (
    Action,
    CancelTasks,
    Continue,
    Kill,
    Note,
    RecordAttempt,
    Submit,
    Transition,
)
from hpcbridge.reconciler._burst_route import burst_inputs
from hpcbridge.reconciler._decide import JobView, Policy, decide
from hpcbridge.reconciler._environment import attempt_environment
from hpcbridge.reconciler._leader import LeaderLock, Leadership, StoreLease, leadership_for
from hpcbridge.reconciler._licence_wait import LicenceNeed
from hpcbridge.reconciler._loop import CycleReport, Reconciler
from hpcbridge.reconciler._retry import RetryDecision, backoff_s, decide_retry, retry_classes

__all__ = [
    "Action",
    "CancelTasks",
    "Continue",
    "CycleReport",
    "JobView",
    "Kill",
    "LeaderLock",
    "Leadership",
    "LicenceNeed",
    "Note",
    "Policy",
    "Reconciler",
    "RecordAttempt",
    "RetryDecision",
    "StoreLease",
    "Submit",
    "Transition",
    "attempt_environment",
    "backoff_s",
    "burst_inputs",
    "decide",
    "decide_retry",
    "leadership_for",
    "retry_classes",
]
