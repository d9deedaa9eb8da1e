"""Bytchat's errors, as FastAPI writes them: `{"detail": …}` with the status.

A request that fails validation is a 422 whose `detail` lists each problem with its `loc`,
`msg` and `type`, as FastAPI clients expect; everything else has a message for `detail`.
"""

import re

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tertulia.core.errors import TertuliaError
from tertulia.faces.errors import ErrorDialect

STATUS = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 400,  # FastAPI apps answer "already registered" with a 400
    "too_large": 413,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "upstream": 502,
    "unavailable": 503,
}

_PATHS = re.compile(r"^/$|^/(users|token|chat|bots)(/.*)?$")


def owns(path: str) -> bool:
    """Bytchat's paths; the CriaBot face claims its own /bots/... shapes first."""
    return bool(_PATHS.match(path))


def _loc(problem: dict[str, str]) -> list[str | int]:
    field = str(problem.get("field", "body"))
    parts: list[str | int] = [int(part) if part.isdigit() else part for part in field.split(".")]
    where = problem.get("in", "body")
    return [where] if field == "body" == where else [where, *parts]


def render(request: Request, error: TertuliaError) -> Response:
    problems = error.details.get("errors") if error.kind == "invalid" else None
    if isinstance(problems, list) and "reason" in error.details:
        detail = [
            {"loc": _loc(problem), "msg": problem.get("reason", "invalid"), "type": "value_error"}
            for problem in problems
        ]
        return JSONResponse({"detail": detail}, status_code=422)
    status = STATUS.get(error.kind, getattr(error, "status", 500))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": error.message}, status_code=status, headers=headers)


dialect = ErrorDialect("bytchat", owns, render)
