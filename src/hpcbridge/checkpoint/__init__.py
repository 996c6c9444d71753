"""Checkpoint SDK for job code running inside an allocation (Slurm or the local executor).

Standard library only, and nothing from the rest of hpcbridge, so it can be imported in any
job environment; every checkpoint it writes can be verified with the standard library alone
(the optional ``blake3`` package only verifies checkpoints of earlier versions that were
hashed with BLAKE3)::

    ckpt = Checkpointer(handle_preemption=True)      # reads HPCBRIDGE_* from the environment
    found = ckpt.restore()
    state = found.read_json() if found else fresh_state()
    for step in range(state["step"], total):
        train_one_step(state)
        if ckpt.should_save():                       # interval elapsed, or preempted
            ckpt.save_json(step + 1, state)
        if ckpt.preempted:
            ckpt.exit_for_requeue()                  # exit code 75: requeue me

``hpcbridge.checkpoint.torch`` adds model/optimizer/RNG state and asynchronous saves.
"""

from __future__ import annotations

from ._checkpointer import Checkpointer, SaveSession
from ._env import (
    ENV_ATTEMPT,
    ENV_DIR,
    ENV_INTERVAL,
    ENV_JOB_ID,
    ENV_KEEP,
    ENV_MTBF,
    ENV_REQUEUE_EXIT_CODE,
    ENV_SIGNAL,
    ENV_STATUS_DIR,
    REQUEUE_EXIT_CODE,
    CheckpointConfig,
    requeue_exit_code,
)
from ._errors import CheckpointConfigError, CheckpointError, CorruptCheckpointError
from ._events import EVENTS_FILE, EventLog
from ._interval import IntervalPolicy, daly_interval, young_interval
from ._manifest import MANIFEST_NAME, FileEntry, Manifest
from ._preempt import PreemptionFlag, exit_for_requeue, install_preemption_handler
from ._store import Checkpoint, Skipped
from ._writer import FileWriter

__all__ = [
    "ENV_ATTEMPT",
    "ENV_DIR",
    "ENV_INTERVAL",
    "ENV_JOB_ID",
    "ENV_KEEP",
    "ENV_MTBF",
    "ENV_REQUEUE_EXIT_CODE",
    "ENV_SIGNAL",
    "ENV_STATUS_DIR",
    "EVENTS_FILE",
    "MANIFEST_NAME",
    "REQUEUE_EXIT_CODE",
    "Checkpoint",
    "CheckpointConfig",
    "CheckpointConfigError",
    "CheckpointError",
    "Checkpointer",
    "CorruptCheckpointError",
    "EventLog",
    "FileEntry",
    "FileWriter",
    "IntervalPolicy",
    "Manifest",
    "PreemptionFlag",
    "SaveSession",
    "Skipped",
    "daly_interval",
    "exit_for_requeue",
    "install_preemption_handler",
    "requeue_exit_code",
    "young_interval",
]
