"""ChatAgent /monitoring: the figures and the logs, the account's own or (for an admin) the
whole server's."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from tertulia.core import monitoring
from tertulia.core.monitoring.logs import MAX_LIMIT
from tertulia.faces.chatagent.bots import Offset
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.errors import CODES
from tertulia.faces.chatagent.schemas import LogPublic, LogsPublic, MetricsPublic
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.store.tables import LogEntry, utcnow

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

Moment = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with a time zone: 2024-01-01T00:00:00Z (a `+` offset written %2B)"),
]
LogLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Level = Annotated[
    str | None,
    Query(max_length=16, description="The lowest level listed: DEBUG, INFO, WARNING, ERROR or CRITICAL"),
]

# Failures that are not a core error kind, in ChatAgent's words.
LOG_CODES = {"ingestion": "INGESTION_FAILED"}


@router.get("/metrics")
async def get_metrics(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    start_time: Moment = None,
    end_time: Moment = None,
) -> MetricsPublic:
    found = await monitoring.figures(
        session, principal, runtime.recorder, runtime.settings.data_folder(), start_time, end_time
    )
    server = found.server
    return MetricsPublic(
        cpu_usage=server.machine.cpu if server else None,
        memory_usage=server.machine.memory if server else None,
        disk_usage=server.machine.disk if server else None,
        active_connections=server.active_connections if server else None,
        total_requests=found.total_requests,
        error_rate=found.error_rate,
        average_response_time=found.average_ms,
        timestamp=utcnow(),
        scope=found.scope,
        start_time=found.since,
        end_time=found.until,
        client_error_rate=found.client_error_rate,
        p50_response_time=found.p50_ms,
        p95_response_time=found.p95_ms,
        prompt_tokens=found.prompt_tokens,
        completion_tokens=found.completion_tokens,
        total_tokens=found.prompt_tokens + found.completion_tokens,
        active_conversations=found.active_conversations,
    )


@router.get("/logs")
async def get_logs(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    level: Level = None,
    start_time: Moment = None,
    end_time: Moment = None,
    limit: LogLimit = 100,
    offset: Offset = 0,
) -> LogsPublic:
    query = monitoring.LogQuery(level, start_time, end_time, limit, offset)
    page = await monitoring.list_logs(session, principal, runtime.recorder, query)
    return LogsPublic(
        logs=[log_public(entry) for entry in page.items], total=page.total, limit=limit, offset=offset
    )


def log_public(entry: LogEntry) -> LogPublic:
    details: dict[str, Any] = dict(entry.details or {})
    kind = details.pop("error_kind", None)
    if kind is not None:
        details["error_code"] = LOG_CODES.get(kind) or CODES.get(kind, (500, "INTERNAL_ERROR"))[1]
    if entry.request_id:
        details["request_id"] = entry.request_id
    if entry.account_id:
        details["user_id"] = entry.account_id
    return LogPublic(
        timestamp=entry.created_at,
        level=entry.level,
        message=entry.message,
        module=entry.module,
        details=details,
    )
