"""Reading the stored log entries: an account reads its own, an admin every one."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import Invalid
from tertulia.core.monitoring.access import check_window, sees_the_server
from tertulia.core.monitoring.context import current_trace
from tertulia.core.monitoring.log_capture import MAX_MESSAGE_CHARS, module_of, plain_details, storable
from tertulia.core.monitoring.recorder import Recorder
from tertulia.core.paging import Page
from tertulia.core.principal import Principal
from tertulia.store.tables import LogEntry, utcnow

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
DEFAULT_WINDOW = timedelta(days=1)
MAX_LIMIT = 1000


@dataclass(frozen=True)
class LogQuery:
    level: str | None = None  # this level and above; None: every stored entry (WARNING and above)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


def level_number(level: str) -> int:
    number = LEVELS.get(level.strip().upper())
    if number is None:
        raise Invalid(f"unknown log level {level!r}", {"field": "level", "allowed": list(LEVELS)})
    return number


async def list_logs(
    session: AsyncSession, actor: Principal, recorder: Recorder, query: LogQuery
) -> Page[LogEntry]:
    """Newest first. `since` defaults to a day before `until` (now by default)."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise Invalid(f"limit is 1 to {MAX_LIMIT}", {"field": "limit"})
    until = query.until or utcnow()
    since = query.since or until - DEFAULT_WINDOW
    check_window(actor, since, until)
    lowest = level_number(query.level) if query.level is not None else 0
    await recorder.flush()  # what this process noted so far is part of the answer
    where = [LogEntry.created_at >= since, LogEntry.created_at < until, LogEntry.level_number >= lowest]
    if not sees_the_server(actor):
        where.append(LogEntry.account_id == actor.account_id)
    total = await session.scalar(select(func.count()).select_from(LogEntry).where(*where)) or 0
    rows = await session.scalars(
        select(LogEntry)
        .where(*where)
        .order_by(LogEntry.created_at.desc(), LogEntry.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    return Page(list(rows), total, query.limit, query.offset)


def store_log(
    session: AsyncSession,
    account_id: str,
    logger: logging.Logger,
    level: int,
    message: str,
    details: dict[str, Any],
) -> None:
    """For work outside a request that writes its outcome anyway (a job's failure): the entry
    joins the caller's transaction, so it is stored with that outcome or not at all; the line
    also goes to the process's log, where the capture handler leaves it alone."""
    session.add(
        LogEntry(
            created_at=utcnow(),
            account_id=account_id,
            level=logging.getLevelName(level),
            level_number=level,
            module=module_of(logger.name),
            message=storable(message[:MAX_MESSAGE_CHARS]),
            request_id=trace.request_id if (trace := current_trace()) else None,
            details=plain_details(details),
        )
    )
    logger.log(level, "%s", message, extra={"account_id": account_id, "details": details, "stored": True})
