"""Logs: one JSON object a line for machines, or short readable lines for a person at a terminal.

Both carry the request or connection id. ``TRACKSIDE_LOG_FORMAT=auto`` (the default) picks text
when stderr is a terminal and JSON otherwise (a pipe, a file, systemd, a container's log driver).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import TextIO

from race_server.redaction import RedactSecrets

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# color_message: uvicorn's ANSI-coloured copy of the message, noise in both formats
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}
# uvicorn logs its life cycle as "uvicorn.error"; on a terminal that reads like an error
_SHORT_NAMES = {"uvicorn.error": "uvicorn"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD and value is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry[key] = value if isinstance(value, (str, int, float, bool)) else repr(value)
        if record.exc_info:
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:03:04 WARNING demo: message  key=value`` — local time, the logger without its
    ``trackside.`` prefix, extra fields after the message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        name = _SHORT_NAMES.get(record.name, record.name.removeprefix("trackside."))
        fields = "".join(f"  {key}={value}" for key, value in _extras(record).items())
        line = f"{stamp} {record.levelname:<7} {name}: {record.getMessage()}{fields}"
        if record.exc_info:
            # exc_text: the traceback as the redaction filter left it
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))
        return line


def resolve_format(fmt: str, stream: TextIO) -> str:
    """``auto`` → ``text`` on a terminal, ``json`` elsewhere; ``json`` and ``text`` stay as set."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> str:
    """Route every logger to ``stream`` (stderr); returns the format chosen (json or text)."""
    target = stream if stream is not None else sys.stderr
    chosen = resolve_format(fmt, target)
    handler = logging.StreamHandler(target)
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    return chosen
