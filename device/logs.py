"""Structured logs on stderr: one JSON object per line, which journald stores as is.

Fields passed through `extra=` (or `log_event(..., key=value)`) become top-level keys,
so `journalctl -u blinkpay -o cat | jq 'select(.event == "decision")'` works. Never put
a face image or a PIN into a log: callers pass ids, scores and reason codes only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, message, then key=value fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        fields = " ".join(f"{k}={v}" for k, v in _extra_fields(record).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes, not the one at setup: a command
    run in-process (the console, tests) never leaves a handler on a stream since closed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """StreamHandler sets it; the current sys.stderr is always the one used."""


def setup_logging(
    level: str = "INFO",
    fmt: Literal["json", "text"] = "json",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every logger to one stderr handler (replacing any earlier one of ours)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_blinkpay", False):
            root.removeHandler(handler)
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _CurrentStderr()
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._blinkpay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # paho logs every packet at DEBUG; keep it quieter than our own DEBUG.
    logging.getLogger("paho").setLevel(max(logging.INFO, root.level))
    return handler


def log_event(logger: logging.Logger, event: str, msg: str = "", **fields: Any) -> None:
    """An INFO line with `event` and fields as top-level JSON keys."""
    logger.info(msg or event, extra={"event": event, **fields})


# What native libraries print on stderr that is not for the person at the terminal: LiteRT's
# note that its default CPU delegate is on (every model load, once per process).
NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextlib.contextmanager
def quiet_native_stderr(noise: tuple[str, ...] = NATIVE_NOISE) -> Iterator[None]:
    """Hold back the lines in `noise` that C/C++ code writes straight to file descriptor 2
    (around a model load): everything else it wrote is passed on to stderr afterwards."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr at all: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                if line.strip() not in noise
            ]
            if kept:
                os.write(2, "".join(kept).encode("utf-8"))
