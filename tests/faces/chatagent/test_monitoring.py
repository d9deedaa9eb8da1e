"""ChatAgent /monitoring over HTTP: each account sees its own requests, figures and logs and
never another's; an admin sees the whole server; records are written in batches, from every
process, and pruned after the retention."""

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert

from tertulia.core.accounts import set_role
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.store.session import Database
from tertulia.store.tables import LogEntry, RequestRecord, utcnow
from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_documents import finished, new_base, upload
from tests.faces.chatagent.test_errors import assert_error, is_utc_timestamp
from tests.faces.chatagent.test_models import ask, connect, remote_conversation
from tests.providers.standins import API_KEY, StandIn

MACHINE_FIELDS = ("cpu_usage", "memory_usage", "disk_usage", "active_connections")


@pytest.fixture
async def client(make_client: AppFactory, standin: StandIn) -> httpx.AsyncClient:
    return await make_client(openai_api_key=API_KEY, openai_base_url=standin.url + "/v1")


async def metrics(client: httpx.AsyncClient, user: User, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/monitoring/metrics", headers=user.headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def logs(client: httpx.AsyncClient, user: User, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/monitoring/logs", headers=user.headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def failed_reply(client: httpx.AsyncClient, user: User, standin: StandIn) -> tuple[str, str]:
    """A message the model fails to answer (the provider answers 500): its conversation and
    the request id of the failed request."""
    await connect(client, user, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(client, user, name=f"Flaky {secrets.token_hex(4)}")
    standin.reset(mode="server_error")
    response = await ask(client, user, conversation_id)
    standin.reset()
    assert response.status_code == 502, response.text
    return conversation_id, response.headers["X-Request-ID"]


async def make_admin(database: Database, user: User) -> None:
    async with database.session() as session:
        await set_role(session, user.username, "admin")


# --- an account's own figures ----------------------------------------------------------


async def test_an_account_sees_its_own_requests_errors_and_latency(client, alice) -> None:
    for _ in range(3):
        assert (await client.get("/api/v1/bots/", headers=alice.headers)).status_code == 200
    assert (await client.get("/api/v1/bots/bot_missing", headers=alice.headers)).status_code == 404

    figures = await metrics(client, alice)

    assert figures["scope"] == "account"
    assert figures["total_requests"] == 4  # signing up was nobody's yet; this request is not done
    assert figures["error_rate"] == 0.0 and figures["client_error_rate"] == 0.25
    assert figures["average_response_time"] > 0
    assert 0 < figures["p50_response_time"] <= figures["p95_response_time"]
    assert all(figures[name] is None for name in MACHINE_FIELDS)  # the server's, not an account's
    assert is_utc_timestamp(figures["timestamp"])
    assert datetime.fromisoformat(figures["end_time"]) - datetime.fromisoformat(
        figures["start_time"]
    ) == timedelta(days=1)


async def test_an_account_with_no_requests_yet_has_no_latency(client, alice) -> None:
    figures = await metrics(client, alice)
    assert figures["total_requests"] == 0 and figures["error_rate"] == 0.0
    assert figures["average_response_time"] is None and figures["p95_response_time"] is None


async def test_tokens_and_open_conversations_are_the_accounts(client, alice, standin: StandIn) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(client, alice)
    assert (await ask(client, alice, conversation_id)).status_code == 200

    figures = await metrics(client, alice)
    # The stand-in reports 21 prompt and 4 completion tokens for a reply.
    assert (figures["prompt_tokens"], figures["completion_tokens"], figures["total_tokens"]) == (21, 4, 25)
    assert figures["active_conversations"] == 1


async def test_one_account_never_sees_anothers_requests_logs_or_figures(
    client, alice, bob, standin: StandIn
) -> None:
    await failed_reply(client, alice, standin)
    conversation_id = await remote_conversation(client, alice, name="Steady")
    assert (await ask(client, alice, conversation_id)).status_code == 200
    alices = await metrics(client, alice)
    assert alices["total_requests"] > 5 and alices["error_rate"] > 0 and alices["total_tokens"] > 0

    bobs = await metrics(client, bob)
    assert bobs["total_requests"] == 0 and bobs["error_rate"] == 0.0
    assert bobs["total_tokens"] == 0 and bobs["active_conversations"] == 0
    assert (await logs(client, bob)) == {"logs": [], "total": 0, "limit": 100, "offset": 0}
    assert (await logs(client, alice))["total"] == 1
    # Bob's own requests are his alone: one metrics and one logs request so far.
    assert (await metrics(client, bob))["total_requests"] == 2
    # And alice's hers: one metrics and one logs request since her figures above.
    assert (await metrics(client, alice))["total_requests"] == alices["total_requests"] + 2


# --- logs --------------------------------------------------------------------------------


async def test_a_model_failure_is_in_the_accounts_logs_with_its_conversation(
    client, alice, standin: StandIn
) -> None:
    conversation_id, request_id = await failed_reply(client, alice, standin)

    # The document's own query.
    body = await logs(client, alice, level="ERROR", start_time="2024-01-01T00:00:00Z", limit=100)

    assert body["total"] == 1 and body["limit"] == 100
    [entry] = body["logs"]
    assert set(entry) == {"timestamp", "level", "message", "module", "details"}
    assert entry["level"] == "ERROR" and entry["module"] == "chat"
    assert entry["message"].startswith("Failed to process message: ") and "500" in entry["message"]
    assert entry["details"]["error_code"] == "UPSTREAM_ERROR"
    assert entry["details"]["conversation_id"] == conversation_id
    assert entry["details"]["request_id"] == request_id
    assert entry["details"]["user_id"] == alice.id
    assert is_utc_timestamp(entry["timestamp"])
    assert API_KEY not in str(body)


async def test_an_ingestion_failure_is_in_the_accounts_logs(client, alice, bob) -> None:
    from tests.core.knowledge.samples import make_pdf

    base_id = await new_base(client, alice)
    accepted = await upload(client, alice, base_id, "scan.pdf", make_pdf([""]))  # no text in it
    assert (await finished(client, alice, accepted["job"]["id"]))["status"] == "failed"

    [entry] = (await logs(client, alice))["logs"]

    assert entry["level"] == "ERROR" and entry["module"] == "ingest"
    assert "scan.pdf" in entry["message"] and "contains no text" in entry["message"]
    assert entry["details"]["error_code"] == "INGESTION_FAILED"
    assert entry["details"]["document_id"] == accepted["id"]
    assert entry["details"]["knowledge_base_id"] == base_id
    assert (await logs(client, bob))["total"] == 0


async def test_an_unexpected_failure_is_logged_for_the_account_without_its_secrets(client, alice) -> None:
    from tests.broken import SECRET

    app = client._transport.app  # type: ignore[attr-defined]

    async def broken(principal: CurrentPrincipal) -> None:
        raise RuntimeError(f"connection string postgres://admin:{SECRET}@db")

    app.router.add_api_route("/api/v1/broken", broken)
    response = await client.get("/api/v1/broken", headers=alice.headers)
    assert response.status_code == 500

    [entry] = (await logs(client, alice))["logs"]
    assert entry["details"]["error_code"] == "INTERNAL_ERROR"
    assert entry["details"]["request_id"] == response.headers["X-Request-ID"]
    assert "/api/v1/broken" in entry["message"]
    assert SECRET not in str(entry) and "RuntimeError" not in str(entry)


async def test_logs_are_filtered_by_level_and_time_and_paged_newest_first(
    client, alice, standin: StandIn
) -> None:
    before = utcnow()
    first, _ = await failed_reply(client, alice, standin)
    between = utcnow()
    second, _ = await failed_reply(client, alice, standin)

    everything = await logs(client, alice, level="warning")  # this level and above, any case
    assert [entry["details"]["conversation_id"] for entry in everything["logs"]] == [second, first]
    assert (await logs(client, alice, level="CRITICAL"))["total"] == 0

    page = await logs(client, alice, limit=1, offset=1)
    assert page["total"] == 2 and page["limit"] == 1 and page["offset"] == 1
    assert [entry["details"]["conversation_id"] for entry in page["logs"]] == [first]

    early = await logs(client, alice, start_time=before.isoformat(), end_time=between.isoformat())
    assert [entry["details"]["conversation_id"] for entry in early["logs"]] == [first]


BAD_LOG_QUERIES = [
    pytest.param({"level": "LOUD"}, "level", id="unknown-level"),
    pytest.param({"start_time": "yesterday"}, "start_time", id="start-not-a-time"),
    pytest.param({"start_time": "2024-01-01T00:00:00"}, "start_time", id="start-without-zone"),
    pytest.param({"end_time": "2024-13-01T00:00:00Z"}, "end_time", id="end-not-a-date"),
    pytest.param({"limit": 0}, "limit", id="limit-zero"),
    pytest.param({"limit": 1001}, "limit", id="limit-too-large"),
    pytest.param({"limit": "many"}, "limit", id="limit-not-a-number"),
    pytest.param({"offset": -1}, "offset", id="offset-negative"),
    pytest.param(
        {"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"},
        "start_time",
        id="start-after-end",
    ),
]


@pytest.mark.parametrize(("params", "field"), BAD_LOG_QUERIES)
async def test_bad_log_queries_are_validation_errors(client, alice, params, field) -> None:
    response = await client.get("/api/v1/monitoring/logs", headers=alice.headers, params=params)
    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == field


@pytest.mark.parametrize(
    "params",
    [
        {"start_time": "not a time"},
        {"start_time": "2024-01-01T00:00:00 08:00"},  # a `+` sent unescaped arrives as a space
        {"start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"},
    ],
)
async def test_bad_metrics_windows_are_validation_errors(client, alice, params) -> None:
    response = await client.get("/api/v1/monitoring/metrics", headers=alice.headers, params=params)
    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "start_time"


async def test_monitoring_needs_a_credential_with_usage_read_and_not_bound_to_a_bot(client, alice) -> None:
    for path in ("/api/v1/monitoring/metrics", "/api/v1/monitoring/logs"):
        assert_error(await client.get(path), 401, "UNAUTHORIZED")
    narrow = await client.post(
        "/api/v1/auth/api-keys", headers=alice.headers, json={"name": "bots only", "scopes": ["bots:read"]}
    )
    headers = {"Authorization": f"Bearer {narrow.json()['key']}"}
    details = assert_error(await client.get("/api/v1/monitoring/metrics", headers=headers), 403, "FORBIDDEN")
    assert details["scope"] == "usage:read"


# --- the admin's view --------------------------------------------------------------------


async def test_an_admin_sees_the_whole_server(
    client, alice, bob, database: Database, standin: StandIn
) -> None:
    conversation_id, _ = await failed_reply(client, alice, standin)
    assert (await client.get("/api/v1/bots/", headers=bob.headers)).status_code == 200
    bobs = await metrics(client, bob)
    alices = await metrics(client, alice)
    admin = await sign_up(client, "root")
    await make_admin(database, admin)

    figures = await metrics(client, admin)

    assert figures["scope"] == "server"
    for name in ("cpu_usage", "memory_usage", "disk_usage"):
        assert 0 <= figures[name] <= 100, figures
    assert figures["active_connections"] >= 1  # this request, at least
    # Everyone's requests (each one's metrics call above included), and nobody's yet: three sign-ups.
    assert figures["total_requests"] == alices["total_requests"] + 1 + bobs["total_requests"] + 1 + 3
    assert figures["error_rate"] > 0 and figures["total_tokens"] == alices["total_tokens"]

    entries = (await logs(client, admin, level="ERROR"))["logs"]
    failure = next(entry for entry in entries if entry["details"].get("conversation_id") == conversation_id)
    assert failure["details"]["user_id"] == alice.id

    # Still only her own for alice, and a demoted admin is an account like any other.
    assert (await metrics(client, alice))["scope"] == "account"
    async with database.session() as session:
        await set_role(session, admin.username, "user")
    assert (await metrics(client, admin))["total_requests"] == 2  # its metrics and logs requests


async def test_nobody_signs_up_as_an_admin(client) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "mallory", "email": "mallory@example.com", "password": "pw123456", "role": "admin"},
    )
    assert response.status_code == 400, response.text


# --- how records are written -------------------------------------------------------------


async def test_requests_are_written_later_in_one_batch_not_one_by_one(make_client: AppFactory) -> None:
    client = await make_client(monitoring_flush_seconds=300)  # no background write meanwhile
    alice = await sign_up(client, "alice")
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for _ in range(20):
            assert (await client.get("/api/v1/bots/", headers=alice.headers)).status_code == 200
        written_during_requests = [s for s in statements if "request_records" in s]
        figures = await metrics(client, alice)
    finally:
        event.remove(runtime.database.engine.sync_engine, "before_cursor_execute", seen)

    assert written_during_requests == []
    assert figures["total_requests"] == 20
    assert len([s for s in statements if s.startswith("INSERT INTO request_records")]) == 1


async def test_another_processs_requests_reach_the_figures(make_client: AppFactory) -> None:
    """Two server processes on one database: what one serves, the other reports, once the
    first has written it in the background (it is never asked for monitoring itself)."""
    serving = await make_client(monitoring_flush_seconds=0.05)
    reporting = await make_client()
    alice = await sign_up(serving, "alice")
    for _ in range(3):
        assert (await serving.get("/api/v1/bots/", headers=alice.headers)).status_code == 200

    asked = 0  # the reporting process's own metrics requests count too, once it is asked again
    while (await metrics(reporting, alice))["total_requests"] != 3 + asked:
        asked += 1
        assert asked < 300, "the serving process's requests never reached the database"
        await asyncio.sleep(0.05)


async def test_records_past_the_retention_are_pruned_at_start(
    make_client: AppFactory, database: Database
) -> None:
    first = await make_client()
    alice = await sign_up(first, "alice")
    async with database.session() as session:
        for days in (30, 3):
            moment = utcnow() - timedelta(days=days)
            await session.execute(
                insert(RequestRecord).values(
                    created_at=moment,
                    account_id=alice.id,
                    face="chatagent",
                    method="GET",
                    route="/api/v1/bots/",
                    status=200,
                    duration_ms=5.0,
                )
            )
            await session.execute(
                insert(LogEntry).values(
                    created_at=moment,
                    account_id=alice.id,
                    level="ERROR",
                    level_number=40,
                    module="chat",
                    message=f"{days} days ago",
                    details={},
                )
            )
        await session.commit()

    restarted = await make_client(monitoring_retention_days=7)
    month = {"start_time": (datetime.now(UTC) - timedelta(days=40)).isoformat()}

    assert (await metrics(restarted, alice, **month))["total_requests"] == 1
    assert [entry["message"] for entry in (await logs(restarted, alice, **month))["logs"]] == ["3 days ago"]


async def test_an_admin_counts_the_connections_open_on_every_process(
    make_client: AppFactory, database: Database, standin: StandIn
) -> None:
    """A reply still being made on one process is an open connection for the admin asking
    another; once answered, it is not."""
    serving = await make_client(
        monitoring_flush_seconds=0.05, openai_api_key=API_KEY, openai_base_url=standin.url + "/v1"
    )
    reporting = await make_client()
    alice, admin = await sign_up(serving, "alice"), await sign_up(serving, "root")
    await make_admin(database, admin)
    await connect(serving, alice, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(serving, alice)
    standin.reset(mode="slow", stall=5.0)  # the model answers after 5 seconds

    asking = asyncio.create_task(ask(serving, alice, conversation_id))
    open_now = 0
    for _ in range(200):
        open_now = (await metrics(reporting, admin))["active_connections"]
        if open_now == 2 or asking.done():
            break
        await asyncio.sleep(0.02)
    assert open_now == 2  # the admin's own request, and alice's on the other process
    assert (await asking).status_code == 200
    for _ in range(200):
        open_now = (await metrics(reporting, admin))["active_connections"]
        if open_now == 1:
            break
        await asyncio.sleep(0.02)
    assert open_now == 1
