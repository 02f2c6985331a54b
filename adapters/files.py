"""Files the program writes hold calendar data: they are created owner-only (0600).

The program sets its own umask (``restrict_umask``, from the CLI's entry
point) rather than trusting the shell's, and files it opens itself pass
``owner_only`` as the opener, so they are 0600 even when called as a library.
"""

from __future__ import annotations

import os

FILE_MODE = 0o600


def owner_only(path: str, flags: int) -> int:
    """An ``open(..., opener=owner_only)`` opener: new files get mode 0600."""
    fd = os.open(path, flags, FILE_MODE)
    if os.fstat(fd).st_mode & 0o077:  # an existing file someone else could read
        os.fchmod(fd, FILE_MODE)
    return fd


def restrict_umask() -> None:
    """Everything created from here on (SQLite's WAL and SHM, temporary files) is owner-only."""
    os.umask(0o077)
