"""User-facing errors: each message says what was wrong and, where it can, what to do."""


class BlinkpayError(Exception):
    """Base for errors the CLI prints as one clear line instead of a traceback."""

    exit_code = 1
