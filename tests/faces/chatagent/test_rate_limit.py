"""ChatAgent rate limits over HTTP: per account by plan, per address before sign-in, with
the document's X-RateLimit-* headers and a RATE_LIMIT_EXCEEDED envelope once spent."""

import time

import httpx
import pytest

from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_errors import assert_error

PLANS = {"standard": "3/minute", "premium": "1000/minute", "enterprise": "10000/minute"}


@pytest.fixture
async def limited(make_client: AppFactory) -> httpx.AsyncClient:
    """The app again on the same database, allowing a standard account 3 requests a minute."""
    return await make_client(rate_limit_plans=PLANS)


def assert_window(response: httpx.Response, limit: int, remaining: int) -> None:
    now = time.time()
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == str(remaining)
    # Epoch seconds at which the window frees up: within the minute, not in the past.
    assert now - 1 <= int(response.headers["X-RateLimit-Reset"]) <= now + 61


def assert_refused(response: httpx.Response, limit: int) -> None:
    assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert_window(response, limit, 0)
    assert 1 <= int(response.headers["Retry-After"]) <= 61


async def test_headers_count_down_and_the_fourth_request_is_refused(
    limited: httpx.AsyncClient, alice: User
) -> None:
    replies = [await limited.get("/api/v1/auth/me", headers=alice.headers) for _ in range(3)]

    for reply, remaining in zip(replies, (2, 1, 0), strict=True):
        assert reply.status_code == 200
        assert_window(reply, 3, remaining)

    fourth = await limited.get("/api/v1/auth/me", headers=alice.headers)

    assert_refused(fourth, 3)
    assert "alice" not in fourth.text
    # The limit is the account's, not a route's.
    assert_refused(await limited.get("/api/v1/bots/", headers=alice.headers), 3)


async def test_a_refused_request_does_nothing(
    client: httpx.AsyncClient, limited: httpx.AsyncClient, alice: User
) -> None:
    for _ in range(3):
        assert (await limited.get("/api/v1/bots/", headers=alice.headers)).status_code == 200

    refused = await limited.post("/api/v1/bots/", json={"name": "Helpdesk"}, headers=alice.headers)

    assert_refused(refused, 3)
    # Asked through the unlimited app on the same database.
    assert (await client.get("/api/v1/bots/", headers=alice.headers)).json()["total"] == 0


async def test_failed_requests_count_too(limited: httpx.AsyncClient, alice: User) -> None:
    statuses = [
        (await limited.get("/api/v1/bots/bot_missing", headers=alice.headers)).status_code,
        (await limited.get("/api/v1/bots/?limit=0", headers=alice.headers)).status_code,
    ]
    third = await limited.get("/api/v1/bots/bot_missing", headers=alice.headers)

    assert statuses == [404, 400]
    assert_error(third, 404, "NOT_FOUND")
    assert_window(third, 3, 0)
    assert_refused(await limited.get("/api/v1/auth/me", headers=alice.headers), 3)


async def test_another_user_is_not_affected(limited: httpx.AsyncClient, alice: User, bob: User) -> None:
    for _ in range(4):
        await limited.get("/api/v1/auth/me", headers=alice.headers)

    bobs = await limited.get("/api/v1/auth/me", headers=bob.headers)

    assert bobs.status_code == 200
    assert bobs.json()["username"] == "bob"
    assert_window(bobs, 3, 2)
    assert_refused(await limited.get("/api/v1/auth/me", headers=alice.headers), 3)


async def test_every_credential_of_an_account_shares_its_limit(
    limited: httpx.AsyncClient, alice: User
) -> None:
    created = await limited.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=alice.headers)
    assert created.status_code == 201
    by_key = {"Authorization": f"Bearer {created.json()['key']}"}

    second = await limited.get("/api/v1/auth/me", headers=by_key)
    third = await limited.get("/api/v1/auth/me", headers=alice.headers)

    assert_window(second, 3, 1)
    assert_window(third, 3, 0)
    assert_refused(await limited.get("/api/v1/auth/me", headers=by_key), 3)


async def test_sign_up_and_login_are_limited_per_address(make_client: AppFactory) -> None:
    server = await make_client(anonymous_rate_limit="2/minute")
    carol = await sign_up(server, "carol")

    login = await server.post("/api/v1/auth/login", json={"username": "carol", "password": "correct horse"})
    assert login.status_code == 200
    assert_window(login, 2, 0)

    refused_login = await server.post(
        "/api/v1/auth/login", json={"username": "carol", "password": "correct horse"}
    )
    refused_sign_up = await server.post(
        "/api/v1/auth/register",
        json={"username": "dave", "email": "dave@example.com", "password": "correct horse"},
    )

    assert_refused(refused_login, 2)
    assert "access_token" not in refused_login.text
    assert_refused(refused_sign_up, 2)
    # Signed-in requests are counted per account, not per address.
    assert (await server.get("/api/v1/auth/me", headers=carol.headers)).status_code == 200

    app = server._transport.app  # type: ignore[attr-defined]
    elsewhere = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
        from_elsewhere = await other.post(
            "/api/v1/auth/login", json={"username": "carol", "password": "correct horse"}
        )
        never_made = await other.post(
            "/api/v1/auth/login", json={"username": "dave", "password": "correct horse"}
        )

    assert from_elsewhere.status_code == 200
    assert_window(from_elsewhere, 2, 1)
    assert_error(never_made, 401, "UNAUTHORIZED")
