"""AsyncChatAgentClient: the same surface as ChatAgentClient, awaited, against a real server."""

import asyncio
import inspect
from collections.abc import AsyncIterator

import httpx
import pytest

from chatagent import (
    AsyncChatAgentClient,
    AsyncMessageStream,
    AuthenticationError,
    ChatAgentClient,
    NotFoundError,
)
from tests.sdk.conftest import PASSWORD, STEADY

RESOURCES = ("auth", "bots", "conversations", "knowledge", "multimodal", "plugins", "monitoring")


def public_methods(resource: object) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(resource, name))
        for name in dir(resource)
        if not name.startswith("_") and callable(getattr(resource, name))
    }


def test_both_clients_offer_the_same_resources_and_methods() -> None:
    sync, asynchronous = ChatAgentClient(access_token="t"), AsyncChatAgentClient(access_token="t")

    for resource in RESOURCES:
        sync_methods = public_methods(getattr(sync, resource))
        async_methods = public_methods(getattr(asynchronous, resource))
        assert sync_methods.keys() == async_methods.keys(), resource
        for name, signature in sync_methods.items():
            assert list(signature.parameters) == list(async_methods[name].parameters), (resource, name)
    sync.close()
    asyncio.run(asynchronous.aclose())


@pytest.fixture
async def carol(base_url: str) -> AsyncIterator[AsyncChatAgentClient]:
    async with AsyncChatAgentClient(base_url) as client:
        await client.auth.register(username="carol", email="carol@example.com", password=PASSWORD)
        yield client


async def test_bots_conversations_and_a_whole_reply(carol: AsyncChatAgentClient) -> None:
    bot = await carol.bots.create({"name": "Geographer", "llm_config": STEADY})
    await carol.bots.update(bot["id"], description="Knows capitals")
    await carol.bots.start(bot["id"])
    conversation = await carol.conversations.create({"bot_id": bot["id"], "title": "Capitals"})

    exchange = await carol.conversations.send_message(
        conversation["id"], "What is the capital of France? Answer in one word."
    )

    assert "Paris" in exchange["bot_response"]["content"]
    assert (await carol.bots.get(bot["id"]))["description"] == "Knows capitals"
    assert (await carol.bots.status(bot["id"]))["message_count"] == 2
    history = await carol.conversations.list_messages(conversation["id"])
    assert [message["id"] for message in history["messages"]] == [
        exchange["user_message"]["id"],
        exchange["bot_response"]["id"],
    ]
    assert (await carol.conversations.list())["total"] == 1
    with pytest.raises(NotFoundError):
        await carol.bots.get("bot_missing")


async def test_a_streamed_reply_read_with_async_for(carol: AsyncChatAgentClient) -> None:
    bot = await carol.bots.create(name="Namer", llm_config=STEADY)
    conversation = await carol.conversations.create(bot_id=bot["id"])

    pieces = []
    async with await carol.conversations.stream_message(conversation["id"], "Name three colours.") as stream:
        async for piece in stream:
            pieces.append(piece)
    again = await carol.conversations.send_message(conversation["id"], "And one more?", stream=True)

    assert stream.reply is not None and len(pieces) > 1
    assert "".join(pieces) == stream.reply["full_content"]
    assert isinstance(again, AsyncMessageStream) and await again.text()
    assert (await carol.conversations.list_messages(conversation["id"]))["total"] == 4


async def test_a_client_built_from_a_login_logs_in_once_for_concurrent_first_requests(base_url: str) -> None:
    async with AsyncChatAgentClient(base_url) as first:
        await first.auth.register(username="dave", email="dave@example.com", password=PASSWORD)
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    async with (
        httpx.AsyncClient(event_hooks={"request": [record]}) as http,
        AsyncChatAgentClient(base_url, username="dave", password=PASSWORD, http_client=http) as client,
    ):
        mes = await asyncio.gather(*(client.auth.me() for _ in range(4)))

    assert [me["username"] for me in mes] == ["dave"] * 4
    assert paths.count("/api/v1/auth/login") == 1 and paths.count("/api/v1/auth/me") == 4

    expired = AsyncChatAgentClient(base_url, "an-expired-token", username="dave", password=PASSWORD)
    async with expired:
        assert (await expired.bots.list())["total"] == 0
        assert expired.access_token not in (None, "an-expired-token")
    async with AsyncChatAgentClient(base_url, username="dave", password="wrong password") as wrong:
        with pytest.raises(AuthenticationError):
            await wrong.auth.me()


async def test_knowledge_added_searched_and_refusals_typed(carol: AsyncChatAgentClient) -> None:
    base = await carol.knowledge.create(name="Manuals")
    added = await carol.knowledge.add_document(
        base["id"], ("zorvex.txt", b"Hold the reset key of the Zorvex 9 router for 12 seconds.")
    )

    assert (await carol.knowledge.wait_for_job(added["job"]["id"]))["status"] == "done"
    found = await carol.knowledge.search(base["id"], "How do I reset the Zorvex router?", top_k=1)
    [hit] = found["results"]
    assert "12 seconds" in hit["content"]
    with pytest.raises(NotFoundError):
        await carol.knowledge.search("kb_missing", "anything")
    async with AsyncChatAgentClient(carol.base_url, "not-a-token") as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.conversations.stream_message("conv_missing", "Hello?")
