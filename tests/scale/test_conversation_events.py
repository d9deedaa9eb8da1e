"""A message stored in a conversation, or a new status, reaches that conversation's ChatAgent
WebSockets: whoever wrote it (the chat engine, any face's REST call, a handoff), on the same
server, and on another server process through Redis pub/sub, even after Redis restarts."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tertulia.core.conversation_events import (
    MessageAdded,
    RedisEvents,
    StatusChanged,
    announce_commits,
    conversation_events,
)
from tertulia.settings import Settings
from tertulia.store.session import Database
from tertulia.store.tables import Conversation, Message
from tests.faces.agentv2.test_agentv2 import agent
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_chat import ask, new_conversation
from tests.faces.chatagent.widget_setup import new_visitor, read_events, web_bot
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


async def test_a_handoff_an_operators_message_and_a_status_reach_a_websocket_on_another_process(
    two_servers,
) -> None:
    """None of these writes goes through the chat engine: Agent v2's request for a person,
    ChatBotKit's message/create (an operator answering), Agent v2's status."""
    first, second = two_servers
    async with httpx.AsyncClient(base_url=f"http://{first}", timeout=120) as rest:
        user = await sign_up(rest, "wanda")
        key = await rest.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "agents"})
        headers = {"Authorization": f"Bearer {key.json()['key']}"}
        bot = await agent(rest, type("Caller", (), {"headers": headers})(), tools=["request-human"])
        opened = await rest.post(f"/api/v2/agent/{bot['id']}/chat", headers=headers, json={"query": "Hola"})
        conversation_id = opened.json()["conversationId"]
        socket = await listening(second, user, conversation_id)
        try:
            handed = await rest.post(
                f"/api/v2/agent/{bot['id']}/chat",
                headers=headers,
                json={"query": "Quiero hablar con una persona", "conversationId": conversation_id},
            )
            assert handed.status_code == 200, handed.text
            status = await next_frame(socket, "conversation_status")
            assert (status["conversation_id"], status["status"]) == (conversation_id, "unresolved")
            asked, answered = await next_frame(socket, "new_message"), await next_frame(socket, "new_message")
            assert asked["message"]["content"] == "Quiero hablar con una persona"
            assert answered["message"]["content"] == handed.json()["answer"]
            assert (
                answered["message"]["sender_type"] == "bot" and answered["message"]["sender_id"] == bot["id"]
            )

            operator = await rest.post(
                f"/v1/conversation/{conversation_id}/message/create",
                headers=headers,
                json={"type": "bot", "text": "Hola, soy Marta. ¿En qué puedo ayudarte?"},
            )
            assert operator.status_code == 200, operator.text
            told = await next_frame(socket, "new_message")
            assert told["message"]["id"] == operator.json()["id"]
            assert told["message"]["content"] == "Hola, soy Marta. ¿En qué puedo ayudarte?"

            resolved = await rest.put(
                f"/api/v2/conversations/{conversation_id}/status",
                headers=headers,
                json={"status": "resolved"},
            )
            assert resolved.status_code == 200, resolved.text
            assert (await next_frame(socket, "conversation_status"))["status"] == "resolved"
        finally:
            await socket.close()


async def test_writes_are_told_once_committed_and_never_when_rolled_back(database: Database) -> None:
    """Straight on the database: what a transaction that rolled back wrote is never told."""
    with serve_in_thread(settings(database)) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=120) as rest:
            user = await sign_up(rest, "wanda")
            conversation_id = await new_conversation(rest, user)
    events = conversation_events(None, 1.0)
    announce_commits(database, events)
    queue = events.watch(conversation_id)

    async def write(content: str, status: str, keep: bool) -> None:
        async with database.session() as session:
            conversation = await session.get(Conversation, conversation_id)
            assert conversation is not None
            session.add(
                Message(
                    account_id=conversation.account_id,
                    conversation_id=conversation_id,
                    role="user",
                    content=content,
                )
            )
            conversation.status = status
            await session.flush()
            await (session.commit() if keep else session.rollback())

    await write("no", "resolved", keep=False)
    await write("sí", "unresolved", keep=True)

    told = [await asyncio.wait_for(queue.get(), timeout=10) for _ in range(2)]
    assert [type(event) for event in told] == [MessageAdded, StatusChanged]
    assert told[0].content == "sí" and told[1].status == "unresolved"  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    assert queue.empty()
    await events.close()


def event(conversation_id: str, content: str) -> MessageAdded:
    return MessageAdded(conversation_id, "msg_1", "user", content, "text", "2025-01-01T00:00:00+00:00", "a")


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


async def test_an_operators_reply_reaches_a_widget_visitor_on_another_server(two_servers) -> None:
    """The visitor's live stream is on the second server; the operator works on the first."""
    first, second = two_servers
    site = "https://shop.example.com"
    async with (
        httpx.AsyncClient(base_url=f"http://{first}", timeout=60) as operator_side,
        httpx.AsyncClient(base_url=f"http://{second}", timeout=60) as visitor_side,
    ):
        owner = await sign_up(operator_side, "olga")
        bot = await web_bot(operator_side, owner, [site])
        visitor = await new_visitor(visitor_side, bot)
        asked = await visitor_side.post(bot.path("handoff"), headers=visitor)
        conversation_id = asked.json()["conversation"]["id"]
        async with visitor_side.stream(
            "GET", bot.path("events"), headers={"Origin": site, **visitor}
        ) as live:
            lines = live.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 10) == ": connected"
            taken = await operator_side.post(
                f"/api/v1/conversations/{conversation_id}/takeover",
                headers=owner.headers,
                json={"name": "Olga"},
            )
            assert taken.status_code == 200, taken.text
            said = await operator_side.post(
                f"/api/v1/conversations/{conversation_id}/operator-messages",
                headers=owner.headers,
                json={"content": "Olga here, from the other server."},
            )
            assert said.status_code == 201, said.text
            received = ""
            while "from the other server" not in received:
                received += await asyncio.wait_for(anext(lines), 15) + "\n"
        told = read_events(received)
        assert told[0][0] == "status" and told[0][1]["conversation"]["operator"] == "Olga"
        assert told[0][1]["conversation"]["human_requested"] is False  # the request was answered
        assert told[-1][0] == "message" and told[-1][1]["id"] == said.json()["id"]
        assert told[-1][1]["role"] == "operator" and told[-1][1]["sender_name"] == "Olga"
