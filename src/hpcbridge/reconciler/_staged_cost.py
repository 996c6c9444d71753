"""What a finished attempt's charge needs from its job's data stage: the bytes staged in
(kept on the cluster's storage while it ran) and, for a job the burst policy sent to a
burst partition, the same bytes as egress (its inputs moved out to the cloud)."""

from __future__ import annotations

from collections.abc import Iterable

from hpcbridge.spec import JobSpec
from hpcbridge.states import JobState
from hpcbridge.store import Event

_STAGED = frozenset({JobState.QUEUED, JobState.HELD})
"""Where a successful stage-in goes, with its report (``bytes_total``) in the event."""


def staged_usage(spec: JobSpec, events: Iterable[Event]) -> dict[str, int]:
    """``staged_bytes`` (and ``egress_bytes`` after a burst) from the job's latest
    stage-in; empty when it staged nothing."""
    staged = 0
    for event in events:
        if (
            event.kind == "transition"
            and event.from_state is JobState.STAGING_IN
            and event.to_state in _STAGED
        ):
            value = event.data.get("bytes_total")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                staged = value
    if not staged:
        return {}
    usage = {"staged_bytes": staged}
    if spec.burst.decided == "burst":
        usage["egress_bytes"] = staged
    return usage
