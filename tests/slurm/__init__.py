"""Tests against the real Slurm test cluster (scripts/slurm-cluster)."""
