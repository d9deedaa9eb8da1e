"""What the ChatBotKit tests share: an account's API token, and the real Python SDK over the
in-process app."""

from collections.abc import AsyncIterator

import httpx
import pytest
from chatbotkit import ChatBotKit

from tests.faces.chatagent.conftest import sign_up

STEADY_BACKSTORY = "You are a helpful assistant. Answer in one short sentence."
# Greedy decoding, so that the small local model answers the same way every run.
STEADY_MODEL = "qwen2.5-coder-0.5b-instruct/temperature=0"


async def token_for(client: httpx.AsyncClient, name: str) -> str:
    user = await sign_up(client, name)
    created = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "cbk"})
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def sdk(client: httpx.AsyncClient, token: str) -> ChatBotKit:
    # The SDK over the same in-process app the test client speaks HTTP to.
    return ChatBotKit(token=token, base_url="http://testserver", transport=client._transport, timeout=120)


@pytest.fixture
async def cbk(client: httpx.AsyncClient) -> AsyncIterator[ChatBotKit]:
    async with sdk(client, await token_for(client, "cbk")) as kit:
        yield kit
