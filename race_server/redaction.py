"""Secrets never reach a log line: a logging.Filter that masks Trackside tokens wherever they appear.

Websocket clients carry their token in the URL (``?token=tsk_…``, ``?viewer=tsv_…``: browsers cannot
set headers on a websocket), and uvicorn logs that URL (``"WebSocket /ws?token=…" [accepted]``, and
the access log when enabled). Anything that quotes a URL, a header or a request body could do the
same, so the filter works on the formatted text of every record: the message with its arguments,
string extras and the traceback. Attached to the handler, it sees records from every logger.
"""

from __future__ import annotations

import logging
import re

# tsk_ API, tsc_ car, tsv_ race viewer, tss_ session, tsi_ invitation, tsr_ race link: prefix + token_urlsafe.
_TOKEN = re.compile(r"\b(ts[kcvsir])_[A-Za-z0-9_\-]{8,}")
# Query parameters that carry secrets whatever their shape, and a race's invitation link.
_SECRET_PARAM = re.compile(r"(?i)\b((?:token|viewer|invitation|password)=)[^&\s\"']+")
_JOIN_LINK = re.compile(r"(/api/join/)[^/?\s\"']+")
MASK = "[redacted]"


def redact(text: str) -> str:
    text = _TOKEN.sub(rf"\g<1>_{MASK}", text)
    return _JOIN_LINK.sub(rf"\g<1>{MASK}", _SECRET_PARAM.sub(rf"\g<1>{MASK}", text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the formatter to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname", "filename"):
                cleaned = redact(value)
                if cleaned != value:
                    setattr(record, key, cleaned)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Formatters print exc_text when it is set (logging.Formatter caches it there): render
            # the traceback once, masked.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
