"""glibc's heap settings for training: keep freed blocks in the process instead of handing them back every batch.

By default glibc serves a block of 128 KB or more with its own mmap and unmaps it when freed; after the first such
free it raises that threshold to the block's size, but it also returns the top of the heap to the system whenever
more than twice the threshold lies free there. A CPU training step frees all of its activations and gradients at the
end of each batch, so the next batch can fault the same pages back in (from a few to about 150 minor page faults a
batch, varying from run to run, measured with the toy MLPs of benchmarks/scaling.py). Fixing both thresholds keeps
those pages: on a 2-core CPU, `gan-lightning train dcgan_mnist` as shipped (300 batches and its FID evaluation) took
0.80x the time, with the same peak memory (docs/benchmarks.md, "Freed memory"; benchmarks/scaling.py allocator).

Both thresholds must be set together: setting either one turns off glibc's dynamic adjustment, and the trim threshold
alone leaves every block over 128 KB to mmap, which measured 75 % slower than the default.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # blocks below this come from the heap: any activation of a model we ship
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024  # free memory the heap may keep at its top before glibc trims it


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc's soname on every Linux architecture
        libc.gnu_get_libc_version  # noqa: B018 (a libc.so.6 that is not glibc has no such thresholds)
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process (and the data workers it forks); True if set.

    A no-op (False) off glibc, e.g. on macOS, Windows or musl."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
