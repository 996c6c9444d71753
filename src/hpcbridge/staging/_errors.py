"""Staging failures, each carrying the failure class the job ends with.

HpcbridgeError
└── StagingError             a transfer failed after its retries (``staging_error``)
    └── ChecksumMismatchError  the bytes are not the ones expected (``checksum_mismatch``)
"""

from __future__ import annotations

from hpcbridge.errors import HpcbridgeError
from hpcbridge.states import FailureClass


class StagingError(HpcbridgeError):
    failure_class = FailureClass.STAGING_ERROR


class ChecksumMismatchError(StagingError):
    failure_class = FailureClass.CHECKSUM_MISMATCH

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"checksum mismatch for {path}: expected {expected}, got {actual}",
            hint="the source changed or was corrupted in transit; fix the source or the "
            "checksum in the spec",
        )
