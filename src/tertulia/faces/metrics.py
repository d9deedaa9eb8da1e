"""GET /metrics: Prometheus' text format, for operators (served when metrics_enabled; with
metrics_token set, only to `Authorization: Bearer <that token>`).

Under several processes sharing PROMETHEUS_MULTIPROC_DIR (`tertulia serve --workers N` sets
one up) the answer adds up every process's values, whichever process is asked.
"""

import hmac
import logging
import os

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from tertulia.core.errors import Unauthenticated
from tertulia.core.monitoring import instruments
from tertulia.faces.deps import RuntimeDep
from tertulia.store.session import Database
from tertulia.store.tables import Job

router = APIRouter(tags=["metrics"])
log = logging.getLogger("tertulia.metrics")

JOB_STATUSES = ("queued", "running", "done", "failed")
_BY_STATUS = select(Job.status, func.count()).where(Job.kind == "ingest").group_by(Job.status)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    token = runtime.settings.metrics_token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            raise Unauthenticated("this server's metrics need its metrics token")
    await _count_jobs(runtime.database)
    body = await anyio.to_thread.run_sync(generate_latest, _registry())
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def _count_jobs(database: Database) -> None:
    """The ingestion jobs by status, as the database has them (whichever runner runs them)."""
    try:
        async with database.session() as session:
            counted = {status: count for status, count in await session.execute(_BY_STATUS)}
    except (SQLAlchemyError, OSError) as error:  # the other figures are still worth serving
        log.warning("metrics: ingestion jobs not counted (%s)", error)
        return
    for status in {*JOB_STATUSES, *counted}:
        instruments.INGESTION_JOBS.labels(status).set(counted.get(status, 0))


def process_ended() -> None:
    """A process's live gauges (open requests, WebSockets) stop counting once it stops."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(os.getpid())
