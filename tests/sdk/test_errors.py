"""Every failure is a ChatAgentError: the server's envelope (code, message, details, request
id) as a typed exception, a rate limit with its wait, and a server out of reach."""

from collections.abc import Iterator
from typing import Any

import pytest

from chatagent import (
    APIConnectionError,
    AuthenticationError,
    ChatAgentClient,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from tests.live_server import free_port, serve_in_thread
from tests.sdk.conftest import PASSWORD, new_conversation, server_settings, signed_up


def test_a_wrong_token_is_an_authentication_error_with_the_envelope(base_url: str) -> None:
    with ChatAgentClient(base_url, "not-a-token") as client:
        with pytest.raises(AuthenticationError) as refused:
            client.bots.list()

    error = refused.value
    assert (error.status_code, error.code) == (401, "UNAUTHORIZED")
    assert error.message and error.request_id and error.request_id.startswith("req_")
    assert str(error).startswith("401 UNAUTHORIZED: ")


def test_a_read_only_key_creating_a_bot_is_permission_denied(alice: ChatAgentClient) -> None:
    key = alice.auth.create_api_key("reader", scopes=["bots:read"])
    listed = alice.auth.list_api_keys()
    assert [(item["id"], item["scopes"]) for item in listed["api_keys"]] == [(key["id"], ["bots:read"])]

    with ChatAgentClient(alice.base_url, key["key"]) as reader:
        assert reader.bots.list()["total"] == 0
        with pytest.raises(PermissionDeniedError) as refused:
            reader.bots.create(name="Sneaky")

    assert (refused.value.status_code, refused.value.code) == (403, "FORBIDDEN")
    assert alice.bots.list()["total"] == 0
    alice.auth.revoke_api_key(key["id"])
    with ChatAgentClient(alice.base_url, key["key"]) as revoked, pytest.raises(AuthenticationError):
        revoked.bots.list()


def test_another_accounts_bot_is_not_found(alice: ChatAgentClient, bob: ChatAgentClient) -> None:
    bot = alice.bots.create(name="Private")

    with pytest.raises(NotFoundError) as missing:
        bob.bots.get(bot["id"])
    with pytest.raises(NotFoundError):
        bob.bots.delete(bot["id"])

    assert (missing.value.status_code, missing.value.code) == (404, "NOT_FOUND")
    assert alice.bots.get(bot["id"])["name"] == "Private"


def test_an_invalid_request_is_a_validation_error_naming_the_field(alice: ChatAgentClient) -> None:
    with pytest.raises(ValidationError) as invalid:
        alice.bots.create(name="Hot", llm_config={"temperature": 5})

    assert (invalid.value.status_code, invalid.value.code) == (400, "VALIDATION_ERROR")
    assert "temperature" in str(invalid.value.details["field"])


def test_a_taken_username_is_a_conflict(base_url: str, alice: ChatAgentClient) -> None:
    with ChatAgentClient(base_url) as client, pytest.raises(ConflictError) as taken:
        client.auth.register(username="alice", email="another@example.com", password=PASSWORD)

    assert (taken.value.status_code, taken.value.code) == (409, "DUPLICATE_RESOURCE")
    assert client.access_token is None


def test_a_provider_without_a_key_is_a_server_error_that_says_so(alice: ChatAgentClient) -> None:
    conversation_id = new_conversation(alice, provider="openai", model="gpt-4")

    with pytest.raises(ServerError) as unavailable:
        alice.conversations.send_message(conversation_id, "Hello?")

    assert (unavailable.value.status_code, unavailable.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert "openai" in unavailable.value.message
    assert alice.conversations.list_messages(conversation_id)["total"] == 0


PLANS = {"standard": "3/minute", "premium": "1000/minute", "enterprise": "10000/minute"}


@pytest.fixture
def limited_base_url(database: Any) -> Iterator[str]:
    """A server allowing a standard account 3 requests a minute."""
    with serve_in_thread(server_settings(database, rate_limit_plans=PLANS)) as address:
        yield f"http://{address}/api/v1"


def test_a_spent_rate_limit_is_a_rate_limit_error_saying_how_long_to_wait(limited_base_url: str) -> None:
    with signed_up(limited_base_url, "hank") as client:
        for _ in range(3):
            client.bots.list()
        with pytest.raises(RateLimitError) as limited:
            client.bots.list()

    error = limited.value
    assert (error.status_code, error.code) == (429, "RATE_LIMIT_EXCEEDED")
    assert error.retry_after is not None and 0 < error.retry_after <= 61


def test_a_rate_limit_met_over_the_websocket_is_the_same_error(limited_base_url: str) -> None:
    with signed_up(limited_base_url, "iris") as client:
        conversation_id = new_conversation(client)  # two requests
        client.bots.list()
        with pytest.raises(RateLimitError) as limited:
            client.conversations.stream_message(conversation_id, "Hello?")

    error = limited.value
    assert (error.status_code, error.code) == (429, "RATE_LIMIT_EXCEEDED")
    assert error.retry_after is not None and 0 < error.retry_after <= 61


def test_a_server_out_of_reach_is_a_connection_error() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/v1"  # nothing listens there

    with ChatAgentClient(base_url, "token") as client, pytest.raises(APIConnectionError) as unreachable:
        client.bots.list()

    assert unreachable.value.status_code is None and unreachable.value.code == "CONNECTION_ERROR"
    assert base_url in str(unreachable.value)


def test_a_wrong_base_url_is_an_error_saying_what_the_server_answered(server: str) -> None:
    with ChatAgentClient(f"http://{server}/api/v9", "token") as client, pytest.raises(NotFoundError) as wrong:
        client.bots.list()

    # Not ChatAgent's envelope: the HTTP status stands in for its code.
    assert (wrong.value.status_code, wrong.value.code) == (404, "HTTP_404")
    assert wrong.value.message == "no such resource"
