"""The local executor backend."""

from hpcbridge.backends.local._backend import LocalBackend
from hpcbridge.backends.local._capacity import Capacity

__all__ = ["Capacity", "LocalBackend"]
