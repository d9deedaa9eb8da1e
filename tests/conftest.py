"""Fixtures: a fresh real database per test (SQLite file, or PostgreSQL when configured),
the real app with its lifespan, and an httpx client speaking HTTP to it.

TERTULIA_TEST_STACK picks the stack every app the tests build runs on: "embedded" (the
default: SQLite, or PostgreSQL as configured, in-process jobs and memory counters) or "scale"
(PostgreSQL with pgvector, Redis for rate limits and conversation events, and jobs sent
through the Redis broker to a real Celery worker of the app's own).
"""

import os
import secrets
import tempfile
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tertulia.app import create_app
from tertulia.settings import Settings
from tertulia.store.migrate import migrate
from tertulia.store.session import Database
from tests.providers.standins import StandIn, serving
from tests.thread_worker import ThreadWorker

STACK = os.environ.get("TERTULIA_TEST_STACK", "embedded")
if STACK not in ("embedded", "scale"):
    raise ValueError(f"TERTULIA_TEST_STACK is 'embedded' or 'scale', not {STACK!r}")
# The machine's (and CI's) Redis; the tests use one database index of it and flush only that.
TEST_REDIS_URL = os.environ.get("TERTULIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Set to a PostgreSQL URL (postgresql+asyncpg://user@host:port/db) to run the suite on it,
# or to "pgserver" for a PostgreSQL 16 with pgvector started for the session from the
# `pgserver` package; each test gets a database of its own on that server.
PGSERVER = "pgserver"
POSTGRES_URL = os.environ.get("TERTULIA_TEST_POSTGRES_URL") or (PGSERVER if STACK == "scale" else None)

_pgserver: Any = None


def pytest_configure(config: pytest.Config) -> None:
    """Starts the session's pgserver, in a folder of its own, when one was asked for; tests
    (and processes they start) then see its URL in TERTULIA_TEST_POSTGRES_URL."""
    global POSTGRES_URL, _pgserver
    if POSTGRES_URL != PGSERVER or _pgserver is not None:
        return
    # Its platformdirs warns, on import, that a container has no XDG_RUNTIME_DIR; it copes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        folder = tempfile.mkdtemp(prefix="tertulia-pgserver-")
        _pgserver = pgserver.get_server(folder, cleanup_mode="delete")
    socket_folder = make_url(_pgserver.get_uri()).query["host"]
    POSTGRES_URL = f"postgresql+asyncpg://postgres@/postgres?host={socket_folder}"
    os.environ["TERTULIA_TEST_POSTGRES_URL"] = POSTGRES_URL


def pytest_unconfigure(config: pytest.Config) -> None:
    global _pgserver
    if _pgserver is not None:
        _pgserver.cleanup()
        _pgserver = None


@asynccontextmanager
async def fresh_database_url(directory: Path) -> AsyncIterator[str]:
    """A new, empty database: a SQLite file in `directory`, or one of its own on POSTGRES_URL."""
    if not POSTGRES_URL:
        yield f"sqlite+aiosqlite:///{directory / 'tertulia.db'}"
        return
    admin = make_url(POSTGRES_URL)
    name = f"tertulia_test_{secrets.token_hex(6)}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database_url(tmp_path) as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate(database)
    yield database
    await database.dispose()


AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def stack_redis_url() -> Iterator[str | None]:
    """Under the scale stack, the tests' Redis database, emptied before the test (so that no
    rate-limit counter or task of another test is left in it); None on the embedded stack."""
    if STACK != "scale":
        yield None
        return
    empty_test_redis("TERTULIA_TEST_STACK=scale")
    yield TEST_REDIS_URL


def empty_test_redis(needed_by: str) -> None:
    """Empties the tests' own Redis database; a Redis that does not answer fails the test,
    saying that `needed_by` needs it."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        client.flushdb()
    except redis.RedisError as error:
        pytest.fail(f"{needed_by} needs Redis at {TEST_REDIS_URL} (TERTULIA_TEST_REDIS_URL): {error}")
    finally:
        client.close()


def stack_settings(redis_url: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings the test stack adds to a test's own: under the scale stack, Redis (unless
    the test chose its own, or none), and Celery jobs on a queue of this app's own (unless the
    test chose how its jobs run)."""
    if redis_url is None:
        return {}
    added: dict[str, Any] = {} if "redis_url" in overrides else {"redis_url": redis_url}
    if "jobs" not in overrides:
        added |= {
            "jobs": "celery",
            "celery_broker_url": redis_url,
            "celery_queue": f"tertulia-test-{secrets.token_hex(6)}",
        }
    return added


@pytest.fixture
async def make_client(
    database: Database, tmp_path: Path, stack_redis_url: str | None
) -> AsyncIterator[AppFactory]:
    """Builds the app with settings overrides and returns an HTTP client for it (with, under
    the scale stack, a Celery worker of its own running its jobs)."""
    stack: list[tuple[FastAPI, Any, httpx.AsyncClient, ThreadWorker | None]] = []

    async def build(**overrides: Any) -> httpx.AsyncClient:
        added = stack_settings(stack_redis_url, overrides)
        settings = Settings(
            database_url=database.url, **{"chroma_path": tmp_path / "chroma", **added, **overrides}
        )
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        worker = None
        if "celery_queue" in added:
            worker = ThreadWorker(settings)
            await anyio.to_thread.run_sync(worker.start)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        stack.append((app, lifespan, client, worker))
        return client

    yield build
    async with AsyncExitStack() as closing:  # every app is closed, even when one fails to
        for _app, lifespan, client, worker in stack:
            closing.push_async_callback(lifespan.__aexit__, None, None, None)
            if worker is not None:
                closing.push_async_callback(anyio.to_thread.run_sync, worker.stop)
            closing.push_async_callback(client.aclose)


@pytest.fixture
async def client(make_client: AppFactory) -> httpx.AsyncClient:
    return await make_client()


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandIn]:
    """Local stand-ins for OpenAI, Anthropic and Gemini, on their real wire protocols."""
    app = StandIn()
    with serving(app):
        yield app


@pytest.fixture
def standin(standin_server: StandIn) -> StandIn:
    """The stand-in server, answering normally again; its base URL is `standin.url`."""
    standin_server.reset()
    return standin_server
