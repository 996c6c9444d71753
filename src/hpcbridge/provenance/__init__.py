"""Provenance of every job: inputs and outputs with digests, the command, the resolved spec,
its environment without secrets, where it was submitted from, nodes and attempts; exported
as W3C PROV-JSON and RO-Crate."""

from hpcbridge.provenance._export import to_prov_json, write_ro_crate
from hpcbridge.provenance._origin import origin, without_secrets
from hpcbridge.provenance._record import ORIGIN_EVENT, build, pinned_spec

__all__ = [
    "ORIGIN_EVENT",
    "build",
    "origin",
    "pinned_spec",
    "to_prov_json",
    "without_secrets",
    "write_ro_crate",
]
