"""CriaBot's envelope, on every reply, success and error alike:
`{"status", "message", "timestamp", "code", ...}` with the HTTP status in `status` too."""

import re
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tertulia.core.errors import TertuliaError
from tertulia.faces.errors import ErrorDialect

# Core error kind → (HTTP status, CriaBot code). CriaBot's codes: SUCCESS, ERROR, NOT_FOUND,
# DUPLICATE, UNAUTHORIZED, RATE_LIMIT.
CODES: dict[str, tuple[int, str]] = {
    "invalid": (400, "ERROR"),
    "unauthenticated": (401, "UNAUTHORIZED"),
    "forbidden": (403, "UNAUTHORIZED"),
    "not_found": (404, "NOT_FOUND"),
    "method_not_allowed": (405, "ERROR"),
    "conflict": (409, "DUPLICATE"),
    "too_large": (413, "ERROR"),
    "rate_limited": (429, "RATE_LIMIT"),
    "quota_exceeded": (429, "RATE_LIMIT"),
    "upstream": (502, "ERROR"),
    "unavailable": (503, "ERROR"),
}

_PATHS = re.compile(
    r"^/bots/chats/start$"
    r"|^/bots/chats/[^/]+/(query|send|end|history|exists)$"
    r"|^/bots/[^/]+/(manage|documents|questions)/[^/]+$"
)


def owns(path: str) -> bool:
    return bool(_PATHS.match(path))


def envelope(message: str, status: int = 200, code: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return {"status": status, "message": message, "timestamp": int(time.time()), "code": code, **extra}


def render(request: Request, error: TertuliaError) -> Response:
    status, code = CODES.get(error.kind, (getattr(error, "status", 500), "ERROR"))
    extra = {"details": error.details} if error.details else {}
    return JSONResponse(envelope(error.message, status, code, **extra), status_code=status)


dialect = ErrorDialect("criabot", owns, render)
