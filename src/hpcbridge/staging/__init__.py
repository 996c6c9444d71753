"""Data staging: inputs in before a job is queued, outputs out after it, every byte hashed.

Sources and destinations are local paths or URLs of any installed fsspec protocol (``s3://``
with s3fs, ``http(s)://`` read-only). Each stage writes a manifest of what it staged
(path, size, ``<algorithm>:<digest>``), which the job wrapper verifies again on the node.
"""

from hpcbridge.staging._cache import DEFAULT_MAX_BYTES, Cache
from hpcbridge.staging._digest import default_algorithm, digest_file, split
from hpcbridge.staging._errors import ChecksumMismatchError, StagingError
from hpcbridge.staging._manifest import (
    INPUTS,
    OUTPUTS,
    FileRecord,
    manifest_dir,
    read_manifest,
)
from hpcbridge.staging._preflight import DataPreflight, check_data, preflight
from hpcbridge.staging._stage import StageReport, stage_in, stage_out
from hpcbridge.staging._transfer import Meter, Retry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "INPUTS",
    "OUTPUTS",
    "Cache",
    "ChecksumMismatchError",
    "DataPreflight",
    "FileRecord",
    "Meter",
    "Retry",
    "StageReport",
    "StagingError",
    "check_data",
    "default_algorithm",
    "digest_file",
    "manifest_dir",
    "preflight",
    "read_manifest",
    "split",
    "stage_in",
    "stage_out",
]
