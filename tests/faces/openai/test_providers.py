"""Bots on remote model providers, through the `openai` client: the provider's reply and
usage come through, and a provider that is unreachable, failing or breaking off mid-reply
is a clear error in OpenAI's shape that leaves nothing behind.

The providers are the stand-ins of tests/providers/standins.py (OpenAI's real wire protocol,
failing on demand) or a port nobody listens on.
"""

from typing import Any

import httpx
import openai
import pytest

from tests.faces.chatagent.test_models import connect
from tests.faces.openai.conftest import KeyHolder, assert_openai_shape, create_bot, openai_client
from tests.live_server import free_port
from tests.providers.standins import StandIn

REMOTE_MODEL = "far-away-7b"
HELLO = [{"role": "user", "content": "Hello?"}]


async def remote_bot(remote: httpx.AsyncClient, holder: KeyHolder, base_url: str) -> str:
    """A bot on the OpenAI-compatible provider, whose account keeps that provider at `base_url`."""
    await connect(remote, holder.user, "openai-compatible", base_url)
    return await create_bot(
        remote,
        holder.user,
        "Remote",
        provider="openai-compatible",
        model=REMOTE_MODEL,
        system_prompt="You are the remote bot.",
    )


async def usage_total(remote: httpx.AsyncClient, holder: KeyHolder) -> dict[str, Any]:
    response = await remote.get("/api/v1/usage", headers=holder.user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["total"])


async def assert_nothing_left(remote: httpx.AsyncClient, holder: KeyHolder) -> None:
    assert (await usage_total(remote, holder))["calls"] == 0
    conversations = await remote.get("/api/v1/conversations/", headers=holder.user.headers)
    assert conversations.json()["total"] == 0
    assert (await remote.get("/health")).json()["status"] == "ok"


async def test_a_remote_bot_answers_with_the_providers_words_and_usage(
    live_url, remote, alice: KeyHolder, standin: StandIn
) -> None:
    bot_id = await remote_bot(remote, alice, standin.url + "/v1")
    async with openai_client(live_url, alice.key) as client:
        reply = await client.chat.completions.create(model="Remote", messages=HELLO, max_tokens=10)
        stream = await client.chat.completions.create(
            model=bot_id, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert reply.choices[0].message.content == "Hello, world!"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 4)
    assert reply.model_extra["tertulia"]["bot_id"] == bot_id
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert streamed == "Hello, world!"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 25

    # The provider got the bot's model and system prompt, and the client's limit.
    sent = standin.received[0].body
    assert sent["model"] == REMOTE_MODEL and sent["max_tokens"] == 10
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][0]["content"].startswith("You are the remote bot.")
    assert sent["messages"][-1] == HELLO[-1]
    spent = await usage_total(remote, alice)
    assert spent == {"prompt_tokens": 42, "completion_tokens": 8, "total_tokens": 50, "calls": 2}


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unreachable_provider_is_a_clear_503_and_leaves_nothing(
    live_url, remote, alice: KeyHolder, stream
) -> None:
    bot_id = await remote_bot(remote, alice, f"http://127.0.0.1:{free_port()}/v1")
    async with openai_client(live_url, alice.key) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model=bot_id, messages=HELLO, stream=stream)
    assert failed.value.status_code == 503
    body = assert_openai_shape(failed.value)
    assert body["type"] == "api_error" and body["code"] == "service_unavailable"
    assert REMOTE_MODEL in body["message"] and "could not reach" in body["message"]
    await assert_nothing_left(remote, alice)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_failing_provider_is_a_clear_502_and_leaves_nothing(
    live_url, remote, alice: KeyHolder, standin: StandIn, stream
) -> None:
    bot_id = await remote_bot(remote, alice, standin.url + "/v1")
    standin.reset(mode="server_error")
    async with openai_client(live_url, alice.key) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model=bot_id, messages=HELLO, stream=stream)
    assert failed.value.status_code == 502
    body = assert_openai_shape(failed.value)
    assert body["type"] == "api_error" and body["code"] == "upstream_error"
    assert REMOTE_MODEL in body["message"] and "HTTP 500" in body["message"]
    await assert_nothing_left(remote, alice)


async def test_a_provider_breaking_off_mid_stream_ends_the_stream_with_an_error(
    live_url, remote, alice: KeyHolder, standin: StandIn
) -> None:
    bot_id = await remote_bot(remote, alice, standin.url + "/v1")
    standin.reset(mode="error_event")  # one piece of the reply, then the provider's error
    received: list[str] = []
    async with openai_client(live_url, alice.key) as client:
        stream = await client.chat.completions.create(model=bot_id, messages=HELLO, stream=True)
        with pytest.raises(openai.APIError) as failed:
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        # Not streamed, the same failure is a plain 502.
        with pytest.raises(openai.APIStatusError) as whole:
            await client.chat.completions.create(model=bot_id, messages=HELLO)
    assert "".join(received) == "Hello"
    assert "stopped mid-reply" in failed.value.message and REMOTE_MODEL in failed.value.message
    assert whole.value.status_code == 502
    assert assert_openai_shape(whole.value)["code"] == "upstream_error"
    # Nothing is stored, but what the provider produced before breaking off is counted.
    spent = await usage_total(remote, alice)
    assert spent["calls"] == 2 and spent["completion_tokens"] > 0
    conversations = await remote.get("/api/v1/conversations/", headers=alice.user.headers)
    assert conversations.json()["total"] == 0


async def test_a_provider_with_no_configuration_is_a_503(as_alice, remote, alice: KeyHolder) -> None:
    unconfigured = await create_bot(
        remote, alice.user, "Unconfigured", provider="anthropic", model="claude-x"
    )
    with pytest.raises(openai.InternalServerError) as failed:
        await as_alice.chat.completions.create(model=unconfigured, messages=HELLO)
    body = assert_openai_shape(failed.value)
    assert failed.value.status_code == 503 and body["code"] == "service_unavailable"
    assert "anthropic" in body["message"]
