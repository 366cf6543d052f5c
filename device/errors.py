"""User-facing errors: each message says what was wrong and, where it can, what to do."""

from __future__ import annotations

import os


class BlinkpayError(Exception):
    """Base for errors the CLI prints as one clear line instead of a traceback."""

    exit_code = 1


def os_error_line(exc: OSError) -> str:
    """One line for a file problem: the path, what is wrong, and the fix."""
    path = exc.filename if exc.filename is not None else "(a file)"
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file or directory; check the path (keys: `blinkpay provision`)"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory; a file was expected there"
    if isinstance(exc, NotADirectoryError):
        return f"{path}: part of this path is a file, not a directory"
    if isinstance(exc, PermissionError):
        user = os.getuid() if hasattr(os, "getuid") else "?"
        return (
            f"{path}: permission denied (uid {user}); run as the service user "
            f"(sudo -u blinkpay blinkpay ...), or fix the owner and mode (ls -l {path})"
        )
    return f"{path}: {exc.strerror or exc}"
