"""Rate limits counted in Redis: one limit for every Tertulia process sharing it, and a prompt
503 in each face's envelope while Redis is away, gone as soon as it is back."""

import time
from collections.abc import Awaitable

import httpx
import pytest

from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_errors import assert_error
from tests.faces.chatbotkit.conftest import token_for
from tests.scale.conftest import RedisServer

pytestmark = pytest.mark.scale


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> User:
    return await sign_up(client, "alice")


PLANS = {"standard": "3/minute", "premium": "1000/minute", "enterprise": "10000/minute"}
# Far above the 1 s Redis timeout, far below a hung request: what "does not hang" means here.
PROMPTLY = 15.0


async def test_two_processes_sharing_redis_enforce_one_limit(
    make_client: AppFactory, redis_url: str, alice: User
) -> None:
    first = await make_client(rate_limit_plans=PLANS, redis_url=redis_url)
    second = await make_client(rate_limit_plans=PLANS, redis_url=redis_url)

    replies = [
        await first.get("/api/v1/auth/me", headers=alice.headers),
        await second.get("/api/v1/auth/me", headers=alice.headers),
        await first.get("/api/v1/auth/me", headers=alice.headers),
    ]

    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert [reply.headers["X-RateLimit-Remaining"] for reply in replies] == ["2", "1", "0"]
    assert_error(await second.get("/api/v1/auth/me", headers=alice.headers), 429, "RATE_LIMIT_EXCEEDED")
    assert_error(await first.get("/api/v1/bots/", headers=alice.headers), 429, "RATE_LIMIT_EXCEEDED")


async def test_without_redis_each_process_counts_alone(make_client: AppFactory, alice: User) -> None:
    first = await make_client(rate_limit_plans=PLANS, redis_url=None)  # even on the scale-out stack
    second = await make_client(rate_limit_plans=PLANS, redis_url=None)
    for _ in range(3):
        assert (await first.get("/api/v1/auth/me", headers=alice.headers)).status_code == 200

    assert (await second.get("/api/v1/auth/me", headers=alice.headers)).status_code == 200


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_redis_gone_is_a_prompt_503_in_each_envelope_and_heals_itself(
    make_client: AppFactory, client: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    user = await sign_up(client, "alice")
    cbk_token = await token_for(client, "carol")
    cbk_headers = {"Authorization": f"Token {cbk_token}"}
    app = await make_client(redis_url=redis_server.url)
    assert (await app.get("/api/v1/auth/me", headers=user.headers)).status_code == 200
    assert (await app.get("/v1/bot/list", headers=cbk_headers)).status_code == 200

    redis_server.stop()

    chatagent, waited = await timed(app.get("/api/v1/auth/me", headers=user.headers))
    assert waited < PROMPTLY
    assert_error(chatagent, 503, "SERVICE_UNAVAILABLE")
    assert "rate limit store (Redis) is not reachable" in chatagent.json()["error"]["message"]
    chatbotkit, waited = await timed(app.get("/v1/bot/list", headers=cbk_headers))
    assert waited < PROMPTLY
    assert chatbotkit.status_code == 503
    assert chatbotkit.json()["code"] == "STORE_SERVICE_UNAVAILABLE"  # scoped: not the model's
    assert "Redis" in chatbotkit.json()["message"]
    # Sign-up is limited per address, through the same store.
    signup = await app.post(
        "/api/v1/auth/register",
        json={"username": "dave", "email": "dave@example.com", "password": "correct horse"},
    )
    assert_error(signup, 503, "SERVICE_UNAVAILABLE")

    redis_server.start()

    assert (await app.get("/api/v1/auth/me", headers=user.headers)).status_code == 200
    assert (await app.get("/v1/bot/list", headers=cbk_headers)).status_code == 200


async def test_a_hung_redis_is_a_prompt_503_too(
    make_client: AppFactory, alice: User, redis_server: RedisServer
) -> None:
    app = await make_client(redis_url=redis_server.url)
    assert (await app.get("/api/v1/auth/me", headers=alice.headers)).status_code == 200

    redis_server.freeze()
    try:
        stuck, waited = await timed(app.get("/api/v1/auth/me", headers=alice.headers))
    finally:
        redis_server.thaw()

    assert waited < PROMPTLY
    assert_error(stuck, 503, "SERVICE_UNAVAILABLE")
    assert (await app.get("/api/v1/auth/me", headers=alice.headers)).status_code == 200
