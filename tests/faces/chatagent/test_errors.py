"""ChatAgent errors over HTTP: every failure is the document's envelope, never a bare 500;
plus the request id, the body size cap, /health, /openapi.json and /docs."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tertulia import __version__
from tests.broken import call_broken_route
from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import User, sign_up


def is_utc_timestamp(value: object) -> bool:
    """ISO 8601 in UTC written with a `Z`, as every timestamp in chatagent-api.md is."""
    if not isinstance(value, str) or not value.endswith("Z"):
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The document's error envelope with this status and code; returns its details."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "timestamp", "request_id"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert is_utc_timestamp(body["timestamp"]), body["timestamp"]
    assert body["request_id"], body
    assert response.headers["X-Request-ID"] == body["request_id"]
    return body["error"]["details"]


async def bot_count(client: httpx.AsyncClient, user: User) -> int:
    response = await client.get("/api/v1/bots/", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["total"]


# --- validation -------------------------------------------------------------------------


async def test_malformed_json_is_a_validation_error_about_the_body(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        "/api/v1/bots/",
        content=b'{"name": "Helpdesk", ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )

    details = assert_error(response, 400, "VALIDATION_ERROR")
    # Not the parser's character position: a client reads `field` as a field name.
    assert details["field"] == "body"
    assert await bot_count(client, alice) == 0


async def test_a_json_array_instead_of_an_object_is_a_validation_error_about_the_body(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post("/api/v1/bots/", json=[{"name": "Helpdesk"}], headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "body"
    assert await bot_count(client, alice) == 0


INVALID_BOTS = [
    pytest.param({"name": 123}, "name", id="name-not-a-string"),
    pytest.param({"name": "Helpdesk", "plugins": "weather"}, "plugins", id="plugins-not-a-list"),
    pytest.param(
        {"name": "Helpdesk", "llm_config": {"temperature": "hot"}},
        "llm_config.temperature",
        id="temperature-not-a-number",
    ),
    pytest.param(
        {"name": "Helpdesk", "llm_config": {"temperature": 5}},
        "llm_config.temperature",
        id="temperature-out-of-range",
    ),
    pytest.param({"description": "no name"}, "name", id="name-missing"),
    pytest.param({"name": ""}, "name", id="name-empty"),
    pytest.param({"name": "n" * 129}, "name", id="name-129-chars"),
    pytest.param({"name": "Helpdesk", "description": "d" * 5000}, "description", id="description-5000-chars"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_BOTS)
async def test_an_invalid_bot_is_refused_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, alice: User, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/bots/", json=body, headers=alice.headers)

    details = assert_error(response, 400, "VALIDATION_ERROR")
    assert details["field"] == field
    assert details["reason"]
    assert await bot_count(client, alice) == 0


async def test_the_longest_name_and_description_allowed_are_accepted(
    client: httpx.AsyncClient, alice: User
) -> None:
    body = {"name": "n" * 128, "description": "d" * 4000}
    response = await client.post("/api/v1/bots/", json=body, headers=alice.headers)

    assert response.status_code == 201, response.text
    assert response.json()["name"] == body["name"]
    assert response.json()["description"] == body["description"]


OTHER_INVALID_BODIES = [
    pytest.param(
        "/api/v1/auth/register",
        {"username": "carol", "email": "not-an-email", "password": "password123"},
        "email",
        id="register-bad-email",
    ),
    pytest.param(
        "/api/v1/auth/register",
        {"username": "carol", "email": "carol@example.com"},
        "password",
        id="register-no-password",
    ),
    pytest.param(
        "/api/v1/auth/register",
        {"username": "carol", "email": "carol@example.com", "password": "short"},
        "password",
        id="register-short-password",
    ),
    pytest.param("/api/v1/auth/login", {"password": "password123"}, "username", id="login-no-username"),
    pytest.param("/api/v1/conversations/", {"title": "no bot"}, "bot_id", id="conversation-no-bot"),
    pytest.param(
        "/api/v1/conversations/", {"bot_id": "b", "context": "x"}, "context", id="context-not-an-object"
    ),
    pytest.param(
        "/api/v1/knowledge/bases", {"name": "kb", "chunk_size": "big"}, "chunk_size", id="chunk-size-text"
    ),
    pytest.param("/api/v1/auth/api-keys", {"scopes": "bots:read"}, "scopes", id="scopes-not-a-list"),
]


@pytest.mark.parametrize(("path", "body", "field"), OTHER_INVALID_BODIES)
async def test_invalid_bodies_on_every_resource_name_the_field(
    client: httpx.AsyncClient, alice: User, path: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post(path, json=body, headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == field


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/bots/",
        "/api/v1/conversations/",
        "/api/v1/knowledge/bases",
        "/api/v1/conversations/c/messages",
    ],
)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param("limit=0", "limit", id="limit-0"),
        pytest.param("limit=1000", "limit", id="limit-1000"),
        pytest.param("limit=ten", "limit", id="limit-text"),
        pytest.param("offset=-1", "offset", id="offset-negative"),
    ],
)
async def test_out_of_range_paging_is_refused_naming_the_parameter(
    client: httpx.AsyncClient, alice: User, path: str, query: str, field: str
) -> None:
    response = await client.get(f"{path}?{query}", headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == field


@pytest.mark.parametrize("path", ["/api/v1/bots/", "/api/v1/conversations/", "/api/v1/knowledge/bases"])
async def test_a_huge_offset_is_refused_not_a_server_error(
    client: httpx.AsyncClient, alice: User, path: str
) -> None:
    response = await client.get(f"{path}?offset={10**20}", headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "offset"


async def test_a_filter_of_the_wrong_type_is_refused_naming_it(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.get("/api/v1/bots/?is_active=perhaps", headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "is_active"


async def test_a_nul_character_in_a_name_is_refused_on_every_database(
    client: httpx.AsyncClient, alice: User
) -> None:
    # PostgreSQL cannot store U+0000 in text; refusing it keeps both backends alike.
    response = await client.post("/api/v1/bots/", json={"name": "Help\x00desk"}, headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "name"
    assert await bot_count(client, alice) == 0


async def test_a_nul_character_in_a_search_is_refused_on_every_database(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.get("/api/v1/bots/", params={"search": "Help\x00desk"}, headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "search"


# --- routes and methods -----------------------------------------------------------------


@pytest.mark.parametrize("authorised", [True, False])
@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/bots/b/nothing", "/api/v1"])
async def test_an_unknown_route_is_a_not_found_envelope(
    client: httpx.AsyncClient, alice: User, path: str, authorised: bool
) -> None:
    response = await client.get(path, headers=alice.headers if authorised else {})

    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/v1/bots/", {"GET", "POST"}),
        ("DELETE", "/api/v1/auth/login", {"POST"}),
        ("POST", "/api/v1/bots/some-bot/status", {"GET"}),
    ],
)
async def test_a_wrong_method_is_a_405_envelope_that_says_what_is_allowed(
    client: httpx.AsyncClient, alice: User, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path, headers=alice.headers)

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    # RFC 9110 §15.5.6: a 405 response MUST carry Allow, naming methods that do work there.
    listed = {part.strip() for part in response.headers.get("Allow", "").split(",") if part.strip()}
    assert listed and listed <= allowed, response.headers.get("Allow")


# --- body size cap ----------------------------------------------------------------------


async def test_a_body_over_the_upload_limit_is_413_in_the_envelope(make_client: AppFactory) -> None:
    small = await make_client(max_upload_bytes=2048)

    carol = await sign_up(small, "carol")
    oversize = {"name": "Big", "description": "x" * 3000}

    response = await small.post("/api/v1/bots/", json=oversize, headers=carol.headers)

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await bot_count(small, carol) == 0
    fits = await small.post(
        "/api/v1/bots/", json={"name": "Small", "description": "x" * 1000}, headers=carol.headers
    )
    assert fits.status_code == 201, fits.text


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(make_client: AppFactory) -> None:
    small = await make_client(max_upload_bytes=2048)

    carol = await sign_up(small, "carol")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "Big", "description": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    response = await small.post(
        "/api/v1/bots/", content=chunks(), headers={**carol.headers, "Content-Type": "application/json"}
    )

    assert "Content-Length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await bot_count(small, carol) == 0


# --- an unexpected failure --------------------------------------------------------------


async def test_an_unexpected_failure_is_an_internal_error_envelope_that_reveals_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await call_broken_route(client, "/api/v1/broken-for-this-test")

    assert_error(response, 500, "INTERNAL_ERROR")


# --- request id -------------------------------------------------------------------------


async def test_a_client_sent_request_id_is_echoed_on_success_and_on_failure(
    client: httpx.AsyncClient, alice: User
) -> None:
    ok = await client.get("/api/v1/auth/me", headers={**alice.headers, "X-Request-ID": "trace-42.a:b_c"})
    failed = await client.get("/api/v1/bots/missing", headers={**alice.headers, "X-Request-ID": "trace-43"})

    assert ok.status_code == 200
    assert ok.headers["X-Request-ID"] == "trace-42.a:b_c"
    assert_error(failed, 404, "NOT_FOUND")
    assert failed.json()["request_id"] == "trace-43"


async def test_every_reply_gets_its_own_request_id_when_the_client_sends_none_or_a_bad_one(
    client: httpx.AsyncClient, alice: User
) -> None:
    first = await client.get("/api/v1/auth/me", headers=alice.headers)
    second = await client.get("/api/v1/auth/me", headers=alice.headers)
    unusable = await client.get(
        "/api/v1/bots/missing", headers={**alice.headers, "X-Request-ID": "has spaces\tand tabs"}
    )

    assert first.headers["X-Request-ID"]
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert_error(unusable, 404, "NOT_FOUND")
    assert unusable.headers["X-Request-ID"] != "has spaces\tand tabs"


# --- health and documentation ----------------------------------------------------------


async def test_health_reports_status_uptime_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["uptime"], int | float) and body["uptime"] >= 0
    assert body["version"] == __version__


async def test_openapi_describes_the_chatagent_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/bots/",
        "/api/v1/bots/{bot_id}",
        "/api/v1/bots/{bot_id}/start",
        "/api/v1/bots/{bot_id}/stop",
        "/api/v1/bots/{bot_id}/status",
        "/api/v1/conversations/",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/knowledge/bases",
    ):
        assert path in paths, path


async def test_docs_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
