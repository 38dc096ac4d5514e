"""Freed big buffers go back to the operating system: glibc's malloc tuned once per process.

glibc serves allocations of 128 KiB and more with mmap and unmaps them when they are freed, but
after the first such block is freed it raises that threshold to the block's size (up to
32 MiB). Every later buffer of a few megabytes (the bytes of a mail, a decoded attachment, a
database driver's buffer) then comes from a heap arena instead, one per thread (the event loop,
the parse thread, the SQLite thread), and stays resident after it is freed: a daemon handling
25 MB mails grows towards the sum of each stage's peak rather than the largest one. Pinning the
threshold keeps big buffers mapped and unmapped as they come and go. `cli.main` calls
`release_big_buffers()` first thing; elsewhere than on glibc it does nothing.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameter numbers and the threshold glibc starts with.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def release_big_buffers() -> bool:
    """Pin glibc's mmap threshold; returns whether the C library took the setting."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
