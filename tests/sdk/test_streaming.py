"""Streamed replies with ChatAgentClient: the pieces as the server's WebSocket sends them, the
complete reply and its stored message, refusals raised before the first piece, and a stream
left early."""

import time

import pytest

from chatagent import (
    APIConnectionError,
    AuthenticationError,
    ChatAgentClient,
    ChatAgentError,
    MessageStream,
    NotFoundError,
    ServerError,
    ValidationError,
)
from tests.live_server import free_port
from tests.sdk.conftest import PASSWORD, new_conversation, signed_up


def test_a_reply_streams_in_pieces_that_make_the_stored_message(alice: ChatAgentClient) -> None:
    conversation_id = new_conversation(alice)

    with alice.conversations.stream_message(conversation_id, "Name three colours.") as stream:
        pieces = list(stream)

    reply = stream.reply
    assert reply is not None and len(pieces) > 1
    assert "".join(pieces) == reply["full_content"]
    assert reply["usage"]["completion_tokens"] > 0
    history = alice.conversations.list_messages(conversation_id)["messages"]
    assert [message["id"] for message in history] == [reply["user_message_id"], reply["message_id"]]
    assert history[0]["content"] == "Name three colours."
    assert history[1]["content"] == reply["full_content"]


def test_send_message_with_stream_true_streams_too(alice: ChatAgentClient) -> None:
    conversation_id = new_conversation(alice)

    stream = alice.conversations.send_message(
        conversation_id, "What is the capital of France? Answer in one word.", stream=True
    )

    assert isinstance(stream, MessageStream)
    assert "Paris" in stream.text()
    # The conversation carries on as one: the bot remembers what was streamed.
    exchange = alice.conversations.send_message(conversation_id, "Which country did I ask about? One word.")
    assert "France" in exchange["bot_response"]["content"]


def test_refusals_are_raised_before_the_first_piece(alice: ChatAgentClient, bob: ChatAgentClient) -> None:
    conversation_id = new_conversation(alice)
    unconfigured_id = new_conversation(alice, "Unconfigured", provider="openai", model="gpt-4")

    with pytest.raises(NotFoundError) as not_theirs:
        bob.conversations.stream_message(conversation_id, "Hello?")
    with pytest.raises(ServerError) as unavailable:
        alice.conversations.stream_message(unconfigured_id, "Hello?")
    with pytest.raises(ValidationError):
        alice.conversations.stream_message(conversation_id, "   ")
    with ChatAgentClient(alice.base_url, "not-a-token") as stranger:
        with pytest.raises(AuthenticationError) as bad:
            stranger.conversations.stream_message(conversation_id, "Hello?")

    assert (not_theirs.value.status_code, not_theirs.value.code) == (404, "NOT_FOUND")
    assert (unavailable.value.status_code, unavailable.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert "openai" in unavailable.value.message
    assert (bad.value.status_code, bad.value.code) == (401, "UNAUTHORIZED")
    assert alice.conversations.list_messages(conversation_id)["total"] == 0


def test_a_stream_renews_an_expired_token_with_the_clients_login(base_url: str) -> None:
    with signed_up(base_url, "ivan") as owner:
        conversation_id = new_conversation(owner)

    with ChatAgentClient(base_url, "an-expired-token", username="ivan", password=PASSWORD) as client:
        text = client.conversations.stream_message(conversation_id, "Say hello.").text()

    assert text
    assert client.access_token != "an-expired-token"


def test_leaving_a_stream_early_stops_the_bot_which_keeps_the_partial_reply(alice: ChatAgentClient) -> None:
    conversation_id = new_conversation(alice, max_tokens=400)

    received = []
    story = "Write a long story about a lighthouse."
    with alice.conversations.stream_message(conversation_id, story) as stream:
        for piece in stream:
            received.append(piece)
            if len(received) == 3:
                break

    assert stream.reply is None
    for _ in range(200):  # the server stores the partial reply once it sees the socket closed
        history = alice.conversations.list_messages(conversation_id)
        if history["total"] == 2:
            break
        time.sleep(0.1)
    reply = history["messages"][1]
    assert reply["metadata"]["partial"] is True
    assert reply["content"].startswith("".join(received))
    assert reply["metadata"]["usage"]["completion_tokens"] < 400


def test_a_socket_that_cannot_open_is_a_clear_error(alice: ChatAgentClient, server: str) -> None:
    conversation_id = new_conversation(alice)
    closed_port = f"http://127.0.0.1:{free_port()}/api/v1"

    with ChatAgentClient(f"http://{server}/api/v9", alice.access_token) as wrong_path:
        with pytest.raises(ChatAgentError) as refused:
            wrong_path.conversations.stream_message(conversation_id, "Hello?")
    with ChatAgentClient(closed_port, alice.access_token) as nobody:
        with pytest.raises(APIConnectionError) as away:
            nobody.conversations.stream_message(conversation_id, "Hello?")

    assert refused.value.status_code == 403  # how Starlette refuses a socket on no route
    assert f"ws://{server}/api/v9/ws/conversations/{conversation_id} answered HTTP 403" in str(refused.value)
    assert alice.access_token not in str(refused.value)
    assert away.value.code == "CONNECTION_ERROR" and "127.0.0.1" in str(away.value)
    assert alice.access_token not in str(away.value)
