"""The OpenAI face as the official `openai` client sees it: one real server per test module
(uvicorn on a TCP port, over one database), and people with accounts, API keys and bots."""

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from anyio.from_thread import start_blocking_portal
from openai import AsyncOpenAI

from tertulia.settings import Settings
from tertulia.store.migrate import migrate
from tertulia.store.session import Database
from tests.conftest import fresh_database_url
from tests.faces.chatagent.conftest import User, sign_up
from tests.live_server import serve_in_thread

# Greedy and short: the real local model answers fast and the same way every run.
STEADY = {"temperature": 0.0, "max_tokens": 12}
CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
EMBEDDING_MODEL = "multilingual-e5-small"


async def _migrated(url: str) -> None:
    database = Database(url)
    try:
        await migrate(database)
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def live_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the module, made on a loop of its own (the tests' loops
    come and go with each test)."""
    with start_blocking_portal() as portal:
        fresh = fresh_database_url(tmp_path_factory.mktemp("openai-face"))
        with portal.wrap_async_context_manager(fresh) as url:
            portal.call(_migrated, url)
            yield url


@pytest.fixture(scope="module")
def live_url(live_database_url: str) -> Iterator[str]:
    """The server's base URL; an OpenAI client's base_url is this plus `/v1`."""
    # Every test signs people up from 127.0.0.1: lift the per-address sign-up limit.
    settings = Settings(database_url=live_database_url, anonymous_rate_limit="1000/minute")
    with serve_in_thread(settings) as address:
        yield f"http://{address}"


@pytest.fixture
async def remote(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the same server: sign-up, keys and bots through the ChatAgent face."""
    async with httpx.AsyncClient(base_url=live_url, timeout=60) as client:
        yield client


def assert_openai_shape(error: openai.APIStatusError) -> dict[str, Any]:
    """The client hands over `json["error"]` as `.body`; the raw reply must hold exactly that."""
    raw = error.response.json()
    assert set(raw) == {"error"} and raw["error"] == error.body
    assert set(error.body) == {"message", "type", "param", "code"}
    assert isinstance(error.body["message"], str) and error.body["message"]
    return dict(error.body)


def openai_client(live_url: str, api_key: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=api_key, base_url=f"{live_url}/v1", max_retries=0, timeout=60)


@dataclass
class KeyHolder:
    """Someone with an account, an API key for it and one bot."""

    user: User
    key: str
    bot_id: str
    bot_name: str


async def create_bot(remote: httpx.AsyncClient, user: User, name: str, **llm_config: Any) -> str:
    created = await remote.post(
        "/api/v1/bots/",
        headers=user.headers,
        json={"name": name, "llm_config": {**STEADY, **llm_config}},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def create_key(remote: httpx.AsyncClient, user: User, **fields: Any) -> str:
    created = await remote.post(
        "/api/v1/auth/api-keys", headers=user.headers, json={"name": "openai", **fields}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


async def new_key_holder(
    remote: httpx.AsyncClient, who: str, bot_name: str = "Helper", **llm_config: Any
) -> KeyHolder:
    user = await sign_up(remote, f"{who}-{secrets.token_hex(4)}")
    bot_id = await create_bot(remote, user, bot_name, **llm_config)
    return KeyHolder(user, await create_key(remote, user), bot_id, bot_name)


@pytest.fixture
async def alice(remote: httpx.AsyncClient) -> KeyHolder:
    return await new_key_holder(remote, "alice")


@pytest.fixture
async def bob(remote: httpx.AsyncClient) -> KeyHolder:
    return await new_key_holder(remote, "bob")


@pytest.fixture
async def as_alice(live_url: str, alice: KeyHolder) -> AsyncIterator[AsyncOpenAI]:
    async with openai_client(live_url, alice.key) as client:
        yield client
