"""Load the spec file argv[1] and print, as JSON, what happened and what it cost.

Run in a child process by test_cli_spec_limits, so that the CPU time and peak memory are
those of one load alone. The address space is capped a gigabyte above what the interpreter
holds after its imports, so that a regression fails with MemoryError instead of filling
the machine.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from hpcbridge.errors import SpecError
from hpcbridge.spec import load_spec_file


def _address_space_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[0])
    return pages * resource.getpagesize()


def main() -> None:
    limit = _address_space_bytes() + 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        load_spec_file(Path(sys.argv[1]))
        outcome = "loaded"
    except SpecError as exc:
        outcome = f"SpecError: {exc.message}"
    except (MemoryError, RecursionError) as exc:
        outcome = type(exc).__name__
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    growth_mb = (after.ru_maxrss - before.ru_maxrss) / 1024  # ru_maxrss is in KiB on Linux
    print(json.dumps({"outcome": outcome, "cpu_s": cpu_s, "growth_mb": growth_mb}))


if __name__ == "__main__":
    main()
