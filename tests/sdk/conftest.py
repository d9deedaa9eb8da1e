"""The SDK against a real Tertulia server (uvicorn in a thread, on the test's database),
answered by the real local model."""

from collections.abc import Iterator
from typing import Any

import pytest

from chatagent import ChatAgentClient
from tertulia.settings import Settings
from tests.live_server import serve_in_thread

PASSWORD = "correct horse"
# Short, deterministic answers keep the tests fast on two cores.
STEADY = {"temperature": 0.0, "max_tokens": 24}


def server_settings(database: Any, **overrides: Any) -> Settings:
    return Settings(database_url=database.url, websocket_heartbeat_seconds=0.5, **overrides)


@pytest.fixture
def server(database: Any) -> Iterator[str]:
    """The server's `host:port`."""
    with serve_in_thread(server_settings(database)) as address:
        yield address


@pytest.fixture
def base_url(server: str) -> str:
    return f"http://{server}/api/v1"


def signed_up(base_url: str, username: str, **options: Any) -> ChatAgentClient:
    """A client of a new account, signed in with the token its registration returned."""
    client = ChatAgentClient(base_url, **options)
    client.auth.register(username=username, email=f"{username}@example.com", password=PASSWORD)
    return client


@pytest.fixture
def alice(base_url: str) -> Iterator[ChatAgentClient]:
    with signed_up(base_url, "alice") as client:
        yield client


@pytest.fixture
def bob(base_url: str) -> Iterator[ChatAgentClient]:
    with signed_up(base_url, "bob") as client:
        yield client


def new_conversation(client: ChatAgentClient, name: str = "Helper", **llm_config: Any) -> str:
    """A conversation with a new bot that answers briefly and deterministically."""
    bot = client.bots.create(name=name, llm_config={**STEADY, **llm_config})
    return str(client.conversations.create(bot_id=bot["id"])["id"])
