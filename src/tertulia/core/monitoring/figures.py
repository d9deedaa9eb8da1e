"""The figures GET /monitoring/metrics reports: requests, errors, latency, tokens and open
conversations over a window, the account's own or (for an admin) the whole server's, and for
an admin the machine's use and the connections open across every server process."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.monitoring.access import check_window, sees_the_server
from tertulia.core.monitoring.recorder import Recorder
from tertulia.core.monitoring.system import MachineUse
from tertulia.core.principal import Principal
from tertulia.store.tables import Conversation, RequestRecord, ServerProcess, UsageRecord, utcnow

DEFAULT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class ServerUse:
    """Only an admin sees these."""

    machine: MachineUse  # of the machine that answered
    active_connections: int  # open requests and WebSockets, every live server process


@dataclass(frozen=True)
class Figures:
    scope: Literal["server", "account"]
    since: datetime
    until: datetime
    total_requests: int
    server_errors: int  # answered 5xx
    client_errors: int  # answered 4xx
    average_ms: float | None  # None: no request in the window
    p50_ms: float | None
    p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    active_conversations: int
    server: ServerUse | None

    @property
    def error_rate(self) -> float:
        return round(self.server_errors / self.total_requests, 4) if self.total_requests else 0.0

    @property
    def client_error_rate(self) -> float:
        return round(self.client_errors / self.total_requests, 4) if self.total_requests else 0.0


async def figures(
    session: AsyncSession,
    actor: Principal,
    recorder: Recorder,
    disk_path: Path,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Figures:
    """`since` defaults to a day before `until` (now by default)."""
    until = until or utcnow()
    since = since or until - DEFAULT_WINDOW
    check_window(actor, since, until)
    whole_server = sees_the_server(actor)
    await recorder.flush()  # this process's latest requests count too

    def mine(column: Any) -> list[ColumnElement[bool]]:
        return [] if whole_server else [column == actor.account_id]

    in_window = [RequestRecord.created_at >= since, RequestRecord.created_at < until]
    where = [*in_window, *mine(RequestRecord.account_id)]
    total, server_errors, client_errors, average = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((RequestRecord.status >= 500, 1), else_=0)), 0),
                func.coalesce(func.sum(case((RequestRecord.status.between(400, 499), 1), else_=0)), 0),
                func.avg(RequestRecord.duration_ms),
            ).where(*where)
        )
    ).one()
    prompt, completion = (
        await session.execute(
            select(
                func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
                func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
            ).where(
                UsageRecord.created_at >= since, UsageRecord.created_at < until, *mine(UsageRecord.account_id)
            )
        )
    ).one()
    open_conversations = await session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.status == "open", *mine(Conversation.account_id))
    )
    server = None
    if whole_server:
        server = ServerUse(recorder.load.now(disk_path), await _open_connections(session, recorder))
    return Figures(
        scope="server" if whole_server else "account",
        since=since,
        until=until,
        total_requests=int(total),
        server_errors=int(server_errors),
        client_errors=int(client_errors),
        average_ms=round(float(average), 1) if average is not None else None,
        p50_ms=await _percentile(session, where, int(total), 0.50),
        p95_ms=await _percentile(session, where, int(total), 0.95),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        active_conversations=int(open_conversations or 0),
        server=server,
    )


async def _percentile(
    session: AsyncSession, where: list[ColumnElement[bool]], count: int, share: float
) -> float | None:
    """The nearest-rank percentile of the requests' durations, counted by the database (no
    backend's own percentile function: SQLite has none)."""
    if count == 0:
        return None
    rank = max(1, math.ceil(share * count))
    value = await session.scalar(
        select(RequestRecord.duration_ms)
        .where(*where)
        .order_by(RequestRecord.duration_ms)
        .offset(rank - 1)
        .limit(1)
    )
    return round(float(value), 1) if value is not None else None


async def _open_connections(session: AsyncSession, recorder: Recorder) -> int:
    """This process's open requests and WebSockets as they are now, and every other live
    process's as it last said (within a few seconds)."""
    others = await session.scalar(
        select(func.coalesce(func.sum(ServerProcess.in_flight + ServerProcess.websockets), 0)).where(
            ServerProcess.id != recorder.process_id,
            ServerProcess.seen_at >= utcnow() - recorder.stale_after,
        )
    )
    return recorder.in_flight + recorder.websockets + int(others or 0)
