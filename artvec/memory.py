"""Keeping freed memory for reuse, so that a CPU forward does not page-fault on every batch.

glibc's malloc serves each block of over 32 MB (a batch's activations: 8 × 128 channels × 208×320 floats
is 136 MB) with fresh pages from the system and returns them when the block is freed; the next batch's
block then touches new pages again, each a page fault that the kernel zeroes. On a 2-core CPU that was
about a quarter of the CPU time of embedding a picture (benchmarks/throughput.py prints it).
``keep_freed_memory`` tells malloc to serve such blocks from its heap and keep what is freed (up to 1 GiB
at the heap's top), as the allocators PyTorch's CPU tuning guide recommends (jemalloc, tcmalloc) do. The
cost: the process keeps its peak memory instead of handing it back between batches.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1   # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

#: free memory at the heap's top above this is still handed back
KEEP_AT_MOST = 1 << 30

#: environment variable that, set to 0, leaves malloc as it is
ENV = "ARTVEC_KEEP_FREED_MEMORY"

_state: dict[str, bool] = {}


def _mallopt():
    """glibc's ``mallopt``, or None (another C library, another system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl's mallopt does nothing
        return libc.mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Make malloc keep freed blocks for reuse (once a process); True where it took effect. Not on other
    systems than glibc's, and not where ``ARTVEC_KEEP_FREED_MEMORY=0``."""
    if "kept" not in _state:
        mallopt = _mallopt() if os.environ.get(ENV, "1").strip() not in ("0", "false", "no") else None
        _state["kept"] = bool(mallopt and mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, KEEP_AT_MOST))
    return _state["kept"]


def return_freed_memory() -> bool:
    """Undo ``keep_freed_memory`` (for a benchmark comparing both in one process): large blocks mapped and
    returned again, with the thresholds glibc's own dynamic setting reaches once a 32 MB block was freed."""
    mallopt = _mallopt()
    if not mallopt:
        return False
    _state.pop("kept", None)
    return bool(mallopt(M_MMAP_MAX, 65536) and mallopt(M_MMAP_THRESHOLD, 32 << 20)
                and mallopt(M_TRIM_THRESHOLD, 64 << 20))
