"""hpcbridge: a control plane for HPC and GPU batch work."""

from __future__ import annotations

__version__ = "0.1.0"
