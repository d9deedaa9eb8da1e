"""GET /health: is the server up, how long, which version, can it reach its database."""

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tertulia.faces.deps import RuntimeDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    uptime: float
    version: str
    database: Literal["ok", "unreachable"]


@router.get("/health", response_model=Health)
async def health(runtime: RuntimeDep) -> JSONResponse:
    try:
        async with runtime.database.session() as session:
            await session.execute(text("SELECT 1"))
        database = "ok"
    except (SQLAlchemyError, OSError):
        database = "unreachable"
    report = Health(
        status="ok" if database == "ok" else "degraded",
        uptime=round(runtime.uptime_seconds, 3),
        version=runtime.version,
        database=database,
    )
    return JSONResponse(report.model_dump(), status_code=200 if database == "ok" else 503)
