"""A message stored in a conversation reaches that conversation's ChatAgent WebSockets: on the
same server, and on another server process through Redis pub/sub, even after Redis restarts."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tertulia.core.conversation_events import MessageAdded, RedisEvents
from tertulia.settings import Settings
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_chat import ask, new_conversation
from tests.live_server import serve_in_thread
from tests.scale.conftest import RedisServer

pytestmark = pytest.mark.scale


def settings(database: Any, **overrides: Any) -> Settings:
    return Settings(database_url=database.url, websocket_heartbeat_seconds=0.5, **overrides)


@pytest.fixture
def two_servers(database: Any, redis_url: str) -> Iterator[tuple[str, str]]:
    """Two Tertulia servers, each with its own runtime, on one database and one Redis."""
    with (
        serve_in_thread(settings(database, redis_url=redis_url)) as first,
        serve_in_thread(settings(database, redis_url=redis_url)) as second,
    ):
        yield first, second


@pytest.fixture
def one_server(database: Any) -> Iterator[str]:
    with serve_in_thread(settings(database)) as address:
        yield address


async def next_frame(socket: Any, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=60))
        if frame["type"] == kind:
            return dict(frame)
        assert frame["type"] == "heartbeat", frame


async def listening(server: str, user: User, conversation_id: str) -> Any:
    socket = await websockets.connect(
        f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={user.token}"
    )
    # A pong means the socket is admitted, and so already watching its conversation.
    await socket.send(json.dumps({"type": "ping"}))
    await next_frame(socket, "pong")
    return socket


async def assert_told_of_exchange(socket: Any, exchange: dict[str, Any], conversation_id: str) -> None:
    asked, answered = await next_frame(socket, "new_message"), await next_frame(socket, "new_message")
    assert asked["conversation_id"] == answered["conversation_id"] == conversation_id
    assert asked["message"]["id"] == exchange["user_message"]["id"]
    assert asked["message"]["sender_type"] == "user"
    assert asked["message"]["content"] == exchange["user_message"]["content"]
    assert answered["message"]["id"] == exchange["bot_response"]["id"]
    assert answered["message"]["sender_type"] == "bot"
    assert answered["message"]["content"] == exchange["bot_response"]["content"]
    assert answered["message"]["sender_id"] == exchange["bot_response"]["sender_id"]


async def test_a_message_posted_on_one_process_reaches_a_websocket_on_another(two_servers) -> None:
    first, second = two_servers
    async with httpx.AsyncClient(base_url=f"http://{first}", timeout=120) as rest:
        user = await sign_up(rest, "wanda")
        conversation_id = await new_conversation(rest, user)
        socket = await listening(second, user, conversation_id)
        try:
            posted = await ask(rest, user, conversation_id, "Say hello.")
            assert posted.status_code == 200, posted.text

            await assert_told_of_exchange(socket, posted.json(), conversation_id)
        finally:
            await socket.close()


async def test_on_one_server_without_redis_a_rest_message_reaches_the_websocket(one_server) -> None:
    async with httpx.AsyncClient(base_url=f"http://{one_server}", timeout=120) as rest:
        user = await sign_up(rest, "wanda")
        conversation_id = await new_conversation(rest, user)
        other_id = await new_conversation(rest, user, name="Other")
        watcher = await listening(one_server, user, conversation_id)
        bystander = await listening(one_server, user, other_id)
        try:
            posted = await ask(rest, user, conversation_id, "Say hello.")

            await assert_told_of_exchange(watcher, posted.json(), conversation_id)
            # Another conversation's socket hears nothing of it (only heartbeats).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(next_frame(bystander, "new_message"), timeout=1.5)
        finally:
            await watcher.close()
            await bystander.close()


async def test_a_second_socket_on_the_conversation_hears_the_first_ones_exchange(one_server) -> None:
    async with httpx.AsyncClient(base_url=f"http://{one_server}", timeout=120) as rest:
        user = await sign_up(rest, "wanda")
        conversation_id = await new_conversation(rest, user)
        speaker = await listening(one_server, user, conversation_id)
        watcher = await listening(one_server, user, conversation_id)
        try:
            await speaker.send(json.dumps({"type": "user_message", "content": "Say hello.", "stream": False}))
            answer = await next_frame(speaker, "bot_response")

            told = [await next_frame(watcher, "new_message"), await next_frame(watcher, "new_message")]
            assert [frame["message"]["sender_type"] for frame in told] == ["user", "bot"]
            assert told[1]["message"]["id"] == answer["message_id"]
            # The speaker already has its answer and is not told of it again.
            await speaker.send(json.dumps({"type": "ping"}))
            assert (await next_frame(speaker, "pong"))["type"] == "pong"
        finally:
            await speaker.close()
            await watcher.close()


def event(conversation_id: str, content: str) -> MessageAdded:
    return MessageAdded(
        conversation_id, "msg_1", "user", content, "text", "2025-01-01T00:00:00+00:00", "a", "b"
    )


async def test_the_redis_listener_comes_back_after_redis_restarts(redis_server: RedisServer) -> None:
    publisher, listener = RedisEvents(redis_server.url, 1.0), RedisEvents(redis_server.url, 1.0)
    await publisher.start()
    await listener.start()
    queue = listener.watch("conv_1")
    try:
        await publisher.publish(event("conv_1", "before"))
        assert (await asyncio.wait_for(queue.get(), timeout=10)).content == "before"

        redis_server.stop()
        # Told to this process only while Redis is away; the publisher does not fail.
        await publisher.publish(event("conv_2", "while away"))
        redis_server.start()

        async def delivered_after_restart() -> MessageAdded:
            while True:
                await publisher.publish(event("conv_1", "after"))
                try:
                    return await asyncio.wait_for(queue.get(), timeout=0.5)
                except TimeoutError:
                    continue

        assert (await asyncio.wait_for(delivered_after_restart(), timeout=30)).content == "after"
    finally:
        listener.unwatch("conv_1", queue)
        await publisher.close()
        await listener.close()
