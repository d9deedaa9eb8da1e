"""ChatBotKit's error codes that need a limit, a failing model or a failing server to be seen:
TOO_MANY_REQUESTS, LIMITS_REACHED, the model's scoped errors (MODEL_BAD_GATEWAY,
MODEL_SERVICE_UNAVAILABLE) and INTERNAL_SERVER_ERROR — as `{message, code}` with the
document's status, through the real SDK, and inside a JSONL stream as an `error` line."""

import json
from typing import Any

import httpx
import pytest
from chatbotkit import APIError

from tests.broken import call_broken_route
from tests.conftest import AppFactory
from tests.faces.chatbotkit.conftest import sdk, token_for
from tests.providers.standins import API_KEY, StandIn

JSONL = {"Accept": "application/jsonl"}
HI = [{"type": "user", "text": "Hi"}]


def headers_of(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}", **more}


def jsonl_lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("application/jsonl")
    assert "\n\n" not in response.text and response.text.endswith("\n")  # never a blank line
    return [json.loads(line) for line in response.text.splitlines()]


async def remote_client(make_client: AppFactory, standin: StandIn, **settings: Any) -> httpx.AsyncClient:
    """The app with OpenAI's API served by the local stand-in."""
    return await make_client(openai_api_key=API_KEY, openai_base_url=standin.url + "/v1", **settings)


async def test_too_many_requests_once_the_rate_limit_is_spent(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    token = await token_for(client, "hasty")
    limited = await make_client(rate_limit_plans={"standard": "3/minute"})
    for _ in range(3):
        assert (await limited.get("/v1/bot/list", headers=headers_of(token))).status_code == 200
    refused = await limited.get("/v1/bot/list", headers=headers_of(token))
    assert refused.status_code == 429
    assert refused.json()["code"] == "TOO_MANY_REQUESTS" and refused.json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    async with sdk(limited, token) as kit:
        with pytest.raises(APIError) as raised:
            await kit.bot.create({"name": "Late"})
    assert (raised.value.status_code, raised.value.code) == (429, "TOO_MANY_REQUESTS")
    # Nothing was created by the refused request.
    other = await make_client(rate_limit_plans={"standard": "100/minute"})
    assert (await other.get("/v1/bot/list", headers=headers_of(token))).json()["items"] == []


async def test_limits_reached_when_the_accounts_tokens_are_spent(
    make_client: AppFactory, standin: StandIn
) -> None:
    client = await remote_client(
        make_client, standin, token_quota_plans={"standard": 50, "premium": None, "enterprise": None}
    )
    token = await token_for(client, "spender")
    async with sdk(client, token) as kit:
        bot = await kit.bot.create({"name": "Remote", "model": "gpt-4o"})
        conversation = await kit.conversation.create({"botId": bot.id})
        for _ in range(2):  # 25 tokens each, as the stand-in counts them: 50 is the cap
            reply = await kit.conversation.complete(conversation.id, {"text": "Hello?"})
            assert reply.text == "Hello, world!"
        with pytest.raises(APIError) as raised:
            await kit.conversation.complete(conversation.id, {"text": "Once more?"})
        assert (raised.value.status_code, raised.value.code) == (429, "LIMITS_REACHED")
        with pytest.raises(APIError) as stateless:
            await kit.conversation.complete(None, {"botId": bot.id, "messages": HI})
        assert stateless.value.code == "LIMITS_REACHED"
    streamed = await client.post(
        f"/v1/conversation/{conversation.id}/complete",
        headers=headers_of(token, **JSONL),
        json={"text": "And streamed?"},
    )
    assert streamed.status_code == 200
    [error] = jsonl_lines(streamed)
    assert error["type"] == "error" and error["data"]["code"] == "LIMITS_REACHED"
    assert len(standin.received) == 2  # the refused replies never reached the model
    listed = await client.get(f"/v1/conversation/{conversation.id}/message/list", headers=headers_of(token))
    assert [item["type"] for item in listed.json()["items"]] == ["bot", "user"] * 2


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [("server_error", 502, "MODEL_BAD_GATEWAY"), ("rate_limited", 503, "MODEL_SERVICE_UNAVAILABLE")],
)
async def test_a_failing_model_is_a_scoped_error(
    make_client: AppFactory, standin: StandIn, mode: str, status: int, code: str
) -> None:
    client = await remote_client(make_client, standin)
    token = await token_for(client, "unlucky")
    async with sdk(client, token) as kit:
        bot = await kit.bot.create({"name": "Remote", "model": "gpt-4o"})
        conversation = await kit.conversation.create({"botId": bot.id})
        standin.reset(mode=mode, retry_after=0)
        with pytest.raises(APIError) as raised:
            await kit.conversation.complete(conversation.id, {"text": "Hello?"})
        assert (raised.value.status_code, raised.value.code) == (status, code)
        assert API_KEY not in raised.value.message
        # In a stream the same error is a line of a 200, which the SDK reads as an item.
        items = [
            item async for item in kit.conversation.complete(None, {"botId": bot.id, "messages": HI}).stream()
        ]
        assert [item.type.value for item in items] == ["error"]
    listed = await client.get(f"/v1/conversation/{conversation.id}/message/list", headers=headers_of(token))
    assert listed.json()["items"] == []  # neither the question nor half an answer is kept


async def test_a_model_failing_mid_reply_ends_the_stream_with_an_error_line(
    make_client: AppFactory, standin: StandIn
) -> None:
    client = await remote_client(make_client, standin)
    token = await token_for(client, "cut")
    async with sdk(client, token) as kit:
        bot = await kit.bot.create({"name": "Remote", "model": "gpt-4o"})
        conversation = await kit.conversation.create({"botId": bot.id})
    standin.reset(mode="error_event")
    streamed = await client.post(
        f"/v1/conversation/{conversation.id}/complete",
        headers=headers_of(token, **JSONL),
        json={"text": "Hello?"},
    )
    assert streamed.status_code == 200
    lines = jsonl_lines(streamed)
    assert [entry["type"] for entry in lines] == ["token", "error"]
    assert lines[0]["data"] == {"token": "Hello"}
    assert lines[1]["data"]["code"] == "MODEL_BAD_GATEWAY" and "mid-reply" in lines[1]["data"]["message"]


async def test_an_unexpected_failure_is_an_internal_server_error_that_reveals_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await call_broken_route(client, "/v1/bot/broken-for-this-test")
    assert response.status_code == 500
    assert response.json() == {"message": "internal server error", "code": "INTERNAL_SERVER_ERROR"}


async def test_a_stream_the_request_is_at_fault_for_is_refused_before_it_starts(
    client: httpx.AsyncClient,
) -> None:
    token = await token_for(client, "early")
    async with sdk(client, token) as kit:
        bot = await kit.bot.create({"name": "Quiet"})
        conversation = await kit.conversation.create({"botId": bot.id})
    # Nothing of the user's to answer yet: a 400, as without a stream, not a 200 with an error line.
    nothing = await client.post(
        f"/v1/conversation/{conversation.id}/receive", headers=headers_of(token, **JSONL), json={}
    )
    assert nothing.status_code == 400 and nothing.json()["code"] == "BAD_REQUEST"
    await client.post(f"/v1/bot/{bot.id}/delete", headers=headers_of(token))
    orphan = await client.post(
        "/v1/conversation/complete",
        headers=headers_of(token, **JSONL),
        json={"botId": bot.id, "messages": HI},
    )
    assert orphan.status_code == 404 and orphan.json()["code"] == "NOT_FOUND"
