"""How a server's log lines look: one JSON object a line, or plain text, each with the id of
the request it was written for (and its account, once known); uvicorn's own lines alike.

`logging_config(settings)` is a `logging.config.dictConfig` dictionary. `tertulia serve` hands
it to uvicorn, which applies it in every server process it starts.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from tertulia.core.monitoring import current_trace
from tertulia.settings import Settings

# What a LogRecord has of its own; anything else on it came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
_OURS = frozenset({"request_id", "account_id", "details", "stored", "request"})


class RequestIdFilter(logging.Filter):
    """Puts the request's id (`-` outside any request) and account on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace = current_trace()
        if getattr(record, "request_id", None) is None:
            record.request_id = trace.request_id if trace else None
        if getattr(record, "account_id", None) is None:
            record.account_id = trace.account_id if trace else None
        return True


class JsonFormatter(logging.Formatter):
    """{"timestamp", "level", "logger", "message", "request_id", "account_id", …}: the record's
    details and other extra fields follow, and the traceback as "exception"."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "account_id": getattr(record, "account_id", None),
        }
        details = getattr(record, "details", None)
        if isinstance(details, dict):
            line["details"] = details
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            line["http"] = {"client": client, "method": method, "path": path, "status": status}
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and name not in _OURS and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`2026-12-10 09:00:00,123 WARNING  tertulia.chat [req_…] message`; `[-]` outside a request."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s [%(request)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request = getattr(record, "request_id", None) or "-"
        return super().format(record)


def uses_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return not sys.stderr.isatty()
    return settings.log_format == "json"


def logging_config(settings: Settings) -> dict[str, Any]:
    """Every line to standard error in one format, at settings.log_level; the `tertulia`
    logger always makes its WARNING records (the account logs keep them), whatever level
    the output shows."""
    formatter = JsonFormatter if uses_json(settings) else PlainFormatter
    level = settings.log_level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestIdFilter}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request"],
                "level": level,
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "tertulia": {"level": min(logging.getLevelName(level), logging.WARNING)},
            "alembic": {"level": max(logging.getLevelName(level), logging.WARNING)},
            # uvicorn's loggers write through the root's handler, not handlers of their own.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
    }
