"""Keep freed CPU memory in the process for reuse (docs/performance.md, item 9).

glibc's malloc serves every block over 32 MB with a fresh ``mmap`` and unmaps it on free, so
each large temporary of a training step (a (64, 2048, 196) float tensor is 103 MB) starts on
pages the kernel must fault in and zero, one 4 KB page at a time: copying such a tensor took
32 ms, against 6.5 ms once freed memory is kept and reused (2 cores, one process per
setting, alternated; docs/performance.md item 9). ``mallopt(M_MMAP_MAX, 0)`` serves large blocks from
the heap instead, and ``M_TRIM_THRESHOLD`` keeps freed heap memory in the process. The cost:
the process's resident memory stays near its peak once reached (measured: +2-8 % peak RSS).
It is done once, when a CPU is chosen to compute on; ``CREST_CPU_ALLOCATOR=system`` leaves
malloc as it is. Other C libraries (macOS, Windows, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

ENV = "CREST_CPU_ALLOCATOR"
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 1 << 30  # freed heap memory kept: up to 1 GiB above the top block

_state: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Apply the setting once per process; True when glibc took it."""
    if "applied" in _state:
        return _state["applied"]
    _state["applied"] = False
    if os.environ.get(ENV, "").lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    _state["applied"] = applied
    if applied:
        log.debug("malloc keeps freed memory for reuse (%s=system to turn off)", ENV)
    return applied
