"""JobSpec v1: model, loading with clear errors, and array/sweep expansion."""

from hpcbridge.spec._expand import (
    MAX_TASKS,
    TaskSpec,
    expand,
    parse_indices,
    shared_part,
    task_count,
    task_documents,
)
from hpcbridge.spec._load import load_spec_document, load_spec_file, load_spec_text
from hpcbridge.spec._model import (
    API_VERSION,
    ArraySpec,
    Backoff,
    Burst,
    CheckpointPolicy,
    Container,
    JobSpec,
    Name,
    Placement,
    Resources,
    RetryPolicy,
    StageIn,
    StageOut,
)
from hpcbridge.spec._units import format_duration, parse_duration_s, parse_memory_mb

__all__ = [
    "API_VERSION",
    "MAX_TASKS",
    "ArraySpec",
    "Backoff",
    "Burst",
    "CheckpointPolicy",
    "Container",
    "JobSpec",
    "Name",
    "Placement",
    "Resources",
    "RetryPolicy",
    "StageIn",
    "StageOut",
    "TaskSpec",
    "expand",
    "format_duration",
    "load_spec_document",
    "load_spec_file",
    "load_spec_text",
    "parse_duration_s",
    "parse_indices",
    "parse_memory_mb",
    "shared_part",
    "task_count",
    "task_documents",
]
