"""Tertulia's own log records of level WARNING and above, kept for GET /monitoring/logs.

A handler on the `tertulia` logger hands each record to the recorder of the code that wrote
it (core.monitoring.context), tagged with the account it was for: the one named by the
record (`extra={"account_id": …}`, for work done outside a request, like a job), else the
account of the request being served. A record for no account is the server's, which only
admins see. What a record may carry for its reader goes in `extra={"details": {…}}`; the
message is stored, never the traceback (which stays in the process's own log).
"""

import logging
from datetime import UTC, datetime
from typing import Any

from tertulia.core.errors import TertuliaError
from tertulia.core.monitoring.context import current_recorder, current_trace
from tertulia.core.monitoring.recorder import LogLine

CAPTURED_LOGGER = "tertulia"
LOWEST_LEVEL = logging.WARNING
MAX_MESSAGE_CHARS = 4000
MAX_MODULE_CHARS = 64


class AccountLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(LOWEST_LEVEL)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("tertulia.monitoring") or getattr(record, "stored", False):
            return  # the recorder's own complaints, and records already stored by their writer
        recorder = current_recorder()
        if recorder is None:
            return
        try:
            trace = current_trace()
            account_id = getattr(record, "account_id", None) or (trace.account_id if trace else None)
            request_id = getattr(record, "request_id", None) or (trace.request_id if trace else None)
            recorder.add_log(
                LogLine(
                    created_at=datetime.fromtimestamp(record.created, UTC),
                    account_id=account_id,
                    level=record.levelname,
                    level_number=record.levelno,
                    module=module_of(record.name),
                    message=storable(record.getMessage()[:MAX_MESSAGE_CHARS]),
                    request_id=request_id,
                    details=plain_details(getattr(record, "details", None)),
                )
            )
        except Exception:
            self.handleError(record)


def install_log_capture() -> None:
    """Adds the handler once per process (it sends each record to its own app's recorder)."""
    logger = logging.getLogger(CAPTURED_LOGGER)
    if not any(isinstance(handler, AccountLogHandler) for handler in logger.handlers):
        logger.addHandler(AccountLogHandler())
    # A log level above WARNING set for the process's output must not stop the records
    # being made: that level is for the output's handler, not for this logger.
    if logger.getEffectiveLevel() > LOWEST_LEVEL:
        logger.setLevel(LOWEST_LEVEL)


def module_of(logger_name: str) -> str:
    """`tertulia.chat` → `chat`; another library's logger keeps its name."""
    prefix = CAPTURED_LOGGER + "."
    name = logger_name[len(prefix) :] if logger_name.startswith(prefix) else logger_name
    return storable(name[:MAX_MODULE_CHARS])


def storable(text: str) -> str:
    """Text any database stores: PostgreSQL refuses U+0000, which a message may quote."""
    return text.replace("\x00", "\ufffd")


def plain_details(details: Any) -> dict[str, Any]:
    """What JSON can store: plain values kept, anything else written as text."""
    if not isinstance(details, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in details.items():
        if value is None:
            continue
        if not isinstance(value, int | float | bool):
            value = storable(str(value))
        kept[storable(str(key))] = value
    return kept


def log_failure(
    logger: logging.Logger,
    error: TertuliaError,
    message: str,
    *,
    account_id: str | None = None,
    **details: Any,
) -> None:
    """Logs a failure at ERROR once, however many layers it passes through on its way out.

    `details` are what its reader may see (a conversation id, the HTTP status); the error's
    kind goes with them, for each face to name in its own words.
    """
    if error.logged:
        return
    error.logged = True
    extra: dict[str, Any] = {"details": {"error_kind": error.kind, **details}}
    if error.subsystem is not None:
        extra["details"]["subsystem"] = error.subsystem
    if account_id is not None:
        extra["account_id"] = account_id
    logger.error("%s: %s", message, error.message, extra=extra)
