"""Reading a mail from standard input (`-`), which may not be there at all.

Started with descriptor 0 closed (`pytrs parse - <&-`, a service manager with no input),
Python sets `sys.stdin` to None, and `.buffer` failed as an internal error (70). Reported as
an OSError naming "-", it is answered as any file on the command line that cannot be read.
"""

from __future__ import annotations

import errno
import sys


def read_stdin() -> bytes:
    """All of standard input; OSError(EBADF) naming "-" when the process has none."""
    if sys.stdin is None:
        raise OSError(errno.EBADF, "standard input is closed", "-")
    return sys.stdin.buffer.read()
