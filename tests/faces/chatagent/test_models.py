"""Remote providers, the account's keys and defaults, usage and quotas, through ChatAgent.

The providers are the local stand-ins of tests/providers/standins.py: OpenAI's, Anthropic's
and Gemini's real wire protocols, failing on demand.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tertulia.store.session import Database
from tests.faces.chatagent.conftest import User
from tests.providers.standins import API_KEY, StandIn

pytestmark = pytest.mark.usefixtures("standin")


async def connect(
    client: httpx.AsyncClient, user: User, provider: str, base_url: str, key: str = API_KEY
) -> None:
    response = await client.put(
        f"/api/v1/providers/{provider}", headers=user.headers, json={"api_key": key, "base_url": base_url}
    )
    assert response.status_code == 200, response.text


async def remote_conversation(
    client: httpx.AsyncClient,
    user: User,
    provider: str = "openai-compatible",
    model: str = "gpt-standin",
    **bot: Any,
) -> str:
    body = {
        "name": bot.pop("name", "Remote"),
        "llm_config": {"provider": provider, "model": model, **bot.pop("llm_config", {})},
        **bot,
    }
    created = await client.post("/api/v1/bots/", headers=user.headers, json=body)
    assert created.status_code == 201, created.text
    conversation = await client.post(
        "/api/v1/conversations/", headers=user.headers, json={"bot_id": created.json()["id"]}
    )
    return str(conversation.json()["id"])


async def ask(
    client: httpx.AsyncClient, user: User, conversation_id: str, content: str = "Say hello"
) -> httpx.Response:
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers, json={"content": content}
    )


async def stored(client: httpx.AsyncClient, user: User, conversation_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers)
    return list(response.json()["messages"])


@pytest.mark.parametrize(
    ("provider", "base_path", "sent_to"),
    [
        ("openai-compatible", "/v1", "/v1/chat/completions"),
        ("anthropic", "", "/v1/messages"),
        ("google", "", "/v1beta/models/gpt-standin:streamGenerateContent"),
    ],
)
async def test_a_bot_answers_through_each_remote_provider(
    client, alice, standin: StandIn, provider: str, base_path: str, sent_to: str
) -> None:
    await connect(client, alice, provider, standin.url + base_path)
    conversation_id = await remote_conversation(
        client, alice, provider, llm_config={"temperature": 0.25, "system_prompt": "You are terse."}
    )
    response = await ask(client, alice, conversation_id, "Greet the world")
    assert response.status_code == 200, response.text
    reply = response.json()["bot_response"]
    assert reply["content"] == "Hello, world!"
    # The provider's own token counts are what the reply records.
    assert reply["metadata"]["usage"] == {"prompt_tokens": 21, "completion_tokens": 4}
    assert reply["metadata"]["provider"] == provider
    [request] = standin.received
    assert request.path == sent_to
    assert "You are terse." in str(request.body) and "Greet the world" in str(request.body)
    assert "0.25" in str(request.body)


async def test_the_bots_own_key_wins_over_the_accounts(client, alice, standin: StandIn) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1", key="sk-account-key-that-is-wrong")
    conversation_id = await remote_conversation(client, alice, llm_config={"api_key": API_KEY})
    response = await ask(client, alice, conversation_id)
    assert response.status_code == 200, response.text
    assert standin.received[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_keys_are_sealed_at_rest_and_never_returned(
    client, alice, database: Database, standin: StandIn
) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    bot = await client.post(
        "/api/v1/bots/",
        headers=alice.headers,
        json={
            "name": "Keyed",
            "llm_config": {"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-bot-secret-123456"},
        },
    )
    assert bot.status_code == 201
    listed = await client.get("/api/v1/providers", headers=alice.headers)
    fetched = await client.get(f"/api/v1/bots/{bot.json()['id']}", headers=alice.headers)
    for response in (listed, fetched, bot):
        assert API_KEY not in response.text and "sk-bot-secret-123456" not in response.text
    by_name = {row["provider"]: row for row in listed.json()["providers"]}
    assert by_name["openai-compatible"]["api_key_set"] is True
    assert by_name["openai-compatible"]["base_url"] == standin.url + "/v1"
    assert by_name["anthropic"]["api_key_set"] is False
    assert by_name["local"]["configured_by_server"] is True
    assert fetched.json()["llm_config"]["api_key_set"] is True

    async with database.engine.connect() as connection:
        credential = (await connection.execute(text("SELECT api_key FROM provider_credentials"))).scalar_one()
        bot_key = (await connection.execute(text("SELECT llm_api_key FROM bots"))).scalar_one()
    for raw, secret in ((credential, API_KEY), (bot_key, "sk-bot-secret-123456")):
        assert raw.startswith("fernet:") and secret not in raw


async def test_an_account_default_model_serves_bots_that_chose_none(client, alice, standin: StandIn) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    chosen = await client.put(
        "/api/v1/models/defaults/chat",
        headers=alice.headers,
        json={"provider": "openai-compatible", "model": "house-model"},
    )
    assert chosen.status_code == 200, chosen.text
    created = await client.post("/api/v1/bots/", headers=alice.headers, json={"name": "Plain"})
    conversation = await client.post(
        "/api/v1/conversations/", headers=alice.headers, json={"bot_id": created.json()["id"]}
    )
    response = await ask(client, alice, conversation.json()["id"])
    assert response.status_code == 200, response.text
    assert standin.received[0].body["model"] == "house-model"
    listed = (await client.get("/api/v1/models", headers=alice.headers)).json()
    assert {"provider": "openai-compatible", "model": "house-model", "task_type": "chat"} in listed[
        "defaults"
    ]
    assert {"provider": "local", "model": "qwen2.5-coder-0.5b-instruct", "task_type": "chat"} in listed[
        "local"
    ]

    removed = await client.delete("/api/v1/models/defaults/chat", headers=alice.headers)
    assert removed.status_code == 200
    assert (await client.get("/api/v1/models", headers=alice.headers)).json()["defaults"] == []


async def test_bad_provider_settings_are_refused_clearly(client, alice) -> None:
    cases = [
        ("/api/v1/providers/nope", {"api_key": "k"}, "provider"),
        ("/api/v1/providers/local", {"api_key": "k"}, "provider"),
        ("/api/v1/providers/openai", {"api_key": "k", "base_url": "ftp://example.com"}, "base_url"),
        ("/api/v1/models/defaults/painting", {"provider": "local", "model": "x"}, "task_type"),
        ("/api/v1/models/defaults/chat", {"provider": "nope", "model": "x"}, "provider"),
    ]
    for path, body, field in cases:
        response = await client.put(path, headers=alice.headers, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["details"]["field"] == field
    missing = await client.delete("/api/v1/providers/openai", headers=alice.headers)
    assert missing.status_code == 404


async def test_one_accounts_keys_and_defaults_are_invisible_to_another(
    client, alice, bob, standin: StandIn
) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    await client.put(
        "/api/v1/models/defaults/chat",
        headers=alice.headers,
        json={"provider": "openai-compatible", "model": "m"},
    )
    providers = (await client.get("/api/v1/providers", headers=bob.headers)).json()["providers"]
    assert all(not row["api_key_set"] and row["base_url"] is None for row in providers)
    assert (await client.get("/api/v1/models", headers=bob.headers)).json()["defaults"] == []
    # Bob's bot on the same provider has no key to use: the server has none either.
    conversation_id = await remote_conversation(client, bob)
    response = await ask(client, bob, conversation_id)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert standin.received == []


@pytest.mark.parametrize(
    ("mode", "status", "code", "words"),
    [
        ("unauthenticated", 502, "UPSTREAM_ERROR", "refused the API key"),
        ("unknown_model", 502, "UPSTREAM_ERROR", "gpt-standin"),
        ("server_error", 502, "UPSTREAM_ERROR", "HTTP 500"),
        ("rate_limited", 503, "SERVICE_UNAVAILABLE", "rate limited"),
        ("slow", 502, "UPSTREAM_ERROR", "timed out"),
        ("garbage", 502, "UPSTREAM_ERROR", "malformed"),
        ("truncated", 502, "UPSTREAM_ERROR", "malformed"),
    ],
)
async def test_provider_failures_are_clear_and_leave_nothing_behind(
    make_client, alice_on, standin: StandIn, mode: str, status: int, code: str, words: str
) -> None:
    client, alice = alice_on
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(client, alice)
    standin.reset(mode=mode, retry_after=0.2, stall=3.0)
    response = await ask(client, alice, conversation_id)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]
    assert API_KEY not in response.text
    assert await stored(client, alice, conversation_id) == []
    usage = (await client.get("/api/v1/usage", headers=alice.headers)).json()
    assert usage["total"]["calls"] == 0


@pytest.fixture
async def alice_on(make_client) -> tuple[httpx.AsyncClient, User]:
    """A server whose provider calls give up after one second."""
    from tests.faces.chatagent.conftest import sign_up

    client = await make_client(provider_timeout_seconds=1.0)
    return client, await sign_up(client, "alice")


async def test_usage_is_counted_per_bot_and_account(client, alice, standin: StandIn) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    first = await remote_conversation(client, alice, name="First")
    second = await remote_conversation(client, alice, name="Second")
    for conversation_id in (first, first, second):
        assert (await ask(client, alice, conversation_id)).status_code == 200
    report = (await client.get("/api/v1/usage", headers=alice.headers)).json()
    assert report["total"] == {"prompt_tokens": 63, "completion_tokens": 12, "total_tokens": 75, "calls": 3}
    assert sorted(row["calls"] for row in report["by_bot"]) == [1, 2]
    assert report["quota"]["used"] == 75 and report["quota"]["limit"] == 2_000_000
    one_bot = (
        await client.get(
            "/api/v1/usage", headers=alice.headers, params={"bot_id": report["by_bot"][0]["bot_id"]}
        )
    ).json()
    assert one_bot["total"]["calls"] == report["by_bot"][0]["calls"]
    # Deleting the conversation keeps the account's usage: quotas are about what was spent.
    await client.delete(f"/api/v1/conversations/{first}", headers=alice.headers)
    assert (await client.get("/api/v1/usage", headers=alice.headers)).json()["total"]["calls"] == 3


async def test_usage_of_one_account_is_not_anothers(client, alice, bob, standin: StandIn) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    assert (await ask(client, alice, await remote_conversation(client, alice))).status_code == 200
    report = (await client.get("/api/v1/usage", headers=bob.headers)).json()
    assert report["total"]["calls"] == 0 and report["by_bot"] == [] and report["quota"]["used"] == 0


async def test_a_plan_out_of_tokens_is_refused_until_the_window_passes(make_client, standin: StandIn) -> None:
    from tests.faces.chatagent.conftest import sign_up

    client = await make_client(token_quota_plans={"standard": 50, "premium": None, "enterprise": None})
    alice = await sign_up(client, "alice")
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(client, alice)
    assert (await ask(client, alice, conversation_id)).status_code == 200  # 25 tokens
    assert (await ask(client, alice, conversation_id)).status_code == 200  # 50: the cap is reached
    refused = await ask(client, alice, conversation_id)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert refused.json()["error"]["details"] == {"limit": 50, "used": 50, "window_hours": 24}
    assert len(await stored(client, alice, conversation_id)) == 4
    assert len(standin.received) == 2


async def test_related_prompts_come_with_the_reply_when_the_bot_asks(client, alice, standin: StandIn) -> None:
    await connect(client, alice, "openai-compatible", standin.url + "/v1")
    conversation_id = await remote_conversation(client, alice, llm_config={"related_prompts": True})
    standin.reset(
        reply=("1. What is a tertulia?\n", "2) Where did they start?\n- ", "Who joins one?\nextra line")
    )
    response = await ask(client, alice, conversation_id)
    assert response.status_code == 200, response.text
    related = response.json()["bot_response"]["metadata"]["related_prompts"]
    assert related == ["What is a tertulia?", "Where did they start?", "Who joins one?"]
    assert len(standin.received) == 2  # the reply, then the suggestions
    assert "follow-up" in str(standin.received[1].body)
    usage = (await client.get("/api/v1/usage", headers=alice.headers)).json()
    assert usage["total"]["calls"] == 2
