"""ChatBotKit's errors: `{"message", "code"}` with the document's codes and statuses."""

import re

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from tertulia.core.errors import TertuliaError
from tertulia.faces.errors import ErrorDialect

CODES: dict[str, tuple[int, str]] = {
    "invalid": (400, "BAD_REQUEST"),
    "unauthenticated": (401, "NOT_AUTHENTICATED"),
    "forbidden": (401, "NOT_AUTHORIZED"),
    "not_found": (404, "NOT_FOUND"),
    "method_not_allowed": (405, "METHOD_NOT_ALLOWED"),
    "conflict": (409, "CONFLICT"),
    "too_large": (413, "BAD_REQUEST"),
    "rate_limited": (429, "TOO_MANY_REQUESTS"),
    "quota_exceeded": (429, "LIMITS_REACHED"),
    # A subsystem (a model provider, a store) failing after Tertulia's retries: a scoped
    # error, prefixed with the subsystem, as the document says (MODEL_BAD_GATEWAY …).
    "upstream": (502, "BAD_GATEWAY"),
    "unavailable": (503, "SERVICE_UNAVAILABLE"),
}

# ChatBotKit's singular resources, under /v1 and /api/v1 (ChatAgent owns the rest of /api/v1;
# its /api/v1/usage stays ChatAgent's, ChatBotKit's is /usage/fetch).
_PATHS = re.compile(
    r"^/(api/)?v1/((bot|conversation|dataset|contact|file|skillset|token|user|partner)(/|$)|usage/|spec\.json$)"
)


def owns(path: str) -> bool:
    return bool(_PATHS.match(path))


def error_body(error: TertuliaError) -> tuple[int, dict[str, str]]:
    status, code = CODES.get(error.kind, (getattr(error, "status", 500), "INTERNAL_SERVER_ERROR"))
    if error.kind in ("upstream", "unavailable"):
        code = f"{(error.subsystem or 'model').upper()}_{code}"
    message = "Not found" if error.kind == "not_found" else error.message
    return status, {"message": message, "code": code}


def render(request: Request, error: TertuliaError) -> Response:
    status, body = error_body(error)
    return JSONResponse(body, status_code=status)


dialect = ErrorDialect("chatbotkit", owns, render)
