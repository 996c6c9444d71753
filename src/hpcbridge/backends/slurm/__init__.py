"""The Slurm backend: sbatch/squeue/sacct on a login node, or slurmrestd with a JWT.

``SlurmBackend`` is registered under the entry point name ``slurm``. Clusters are named in
``Settings.resolved_clusters_file`` (see ``_config``); a spec picks one with ``cluster:``.
"""

from hpcbridge.backends.slurm._backend import Backoff, SlurmBackend
from hpcbridge.backends.slurm._classify import observe, pending_sentence, reason_sentence
from hpcbridge.backends.slurm._config import (
    DEFAULT_CLUSTER,
    REST_API_VERSION,
    ClusterConfig,
    Clusters,
    load_clusters,
)
from hpcbridge.backends.slurm._records import JobRecord, NodeRecord, PartitionRecord
from hpcbridge.backends.slurm._render import BatchJob, render_batch, rest_job, sbatch_argv

__all__ = [
    "DEFAULT_CLUSTER",
    "REST_API_VERSION",
    "Backoff",
    "BatchJob",
    "ClusterConfig",
    "Clusters",
    "JobRecord",
    "NodeRecord",
    "PartitionRecord",
    "SlurmBackend",
    "load_clusters",
    "observe",
    "pending_sentence",
    "reason_sentence",
    "render_batch",
    "rest_job",
    "sbatch_argv",
]
