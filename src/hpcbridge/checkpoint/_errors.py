"""Errors of the checkpoint SDK (kept apart from ``hpcbridge.errors`` so the SDK stands alone)."""

from __future__ import annotations


class CheckpointError(Exception):
    """Base of every error the checkpoint SDK raises on purpose."""


class CheckpointConfigError(CheckpointError, ValueError):
    """An ``HPCBRIDGE_*`` variable or constructor argument has an invalid value."""


class CorruptCheckpointError(CheckpointError):
    """Checkpoint content does not match its manifest; never hand such data to a job."""
