"""User-facing errors: each message says what was wrong and, where it can, what to do."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any


class BlinkpayError(Exception):
    """Base for errors the CLI prints as one clear line instead of a traceback."""

    exit_code = 1


def fill(
    message: str,
    values: Mapping[str, Any] | None = None,
    translate: Callable[..., str] | None = None,
) -> str:
    """`message` with its {named} values, through `translate(message, **values)` when given
    (a user interface's language, backend/console/i18n.py); a value that is a (message,
    values) pair, or a list of them (joined with "; "), is filled and translated too."""
    filled: dict[str, Any] = {}
    for name, value in (values or {}).items():
        if isinstance(value, tuple):
            value = fill(*value, translate=translate)
        elif isinstance(value, list):
            value = "; ".join(fill(*part, translate=translate) for part in value)
        filled[name] = value
    if translate is not None:
        return translate(message, **filled)
    return message.format(**filled) if filled else message


class TranslatableError(BlinkpayError):
    """A refusal a person reads: a message with {named} values kept apart (`message`,
    `values`), so an interface can show it in the reader's language (`text`), and the
    reason a counter counts (`reason`, a fixed value). str() is the English text."""

    def __init__(
        self, message: str, reason: str = "", args: Mapping[str, Any] | None = None
    ) -> None:
        self.message = message
        self.values = dict(args or {})
        self.reason = reason
        super().__init__(fill(message, self.values))

    def text(self, translate: Callable[..., str]) -> str:
        """The message in the language of `translate` (_("text {name}", name=...))."""
        return fill(self.message, self.values, translate)


def os_error_line(exc: OSError) -> str:
    """One line for a file problem: the path (when the error names one), what is wrong, and
    the fix."""
    path = exc.filename
    where = "" if path is None else f"{path}: "
    if isinstance(exc, FileNotFoundError):
        return f"{where}no such file or directory; check the path (keys: `blinkpay provision`)"
    if isinstance(exc, IsADirectoryError):
        return f"{where}is a directory; a file was expected there"
    if isinstance(exc, NotADirectoryError):
        return f"{where}part of this path is a file, not a directory"
    if isinstance(exc, PermissionError):
        user = os.getuid() if hasattr(os, "getuid") else "?"
        look = "" if path is None else f" (ls -l {path})"
        return (
            f"{where}permission denied (uid {user}); run as the service user "
            f"(sudo -u blinkpay blinkpay ...), or fix the owner and mode{look}"
        )
    return f"{where}{exc.strerror or exc}"
