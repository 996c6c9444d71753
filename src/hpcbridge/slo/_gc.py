"""Pausing CPython's cyclic garbage collector while a whole history is turned into records.

Reading a million events builds millions of short- and long-lived objects, none of them in
reference cycles: reference counting frees every one. The cyclic collector still runs a
full pass whenever enough of them survive a while, and each pass walks the whole (large)
heap again; at a million events that was a fifth of ``slo report``'s time, and a share
that grows with the history. Cycles made by other threads meanwhile are collected after.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic GC inside; nested and concurrent uses restore it once, at the end.

    The collector is re-enabled only if it was enabled when the outermost use began.
    """
    global _depth, _was_enabled  # noqa: PLW0603 (one process-wide switch, counted)
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
