"""The database engine and sessions for either backend, chosen by URL."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _connection_errors() -> tuple[type[BaseException], ...]:
    """The driver's errors that mean the server cannot be reached (down, restarting, out of
    connections), as opposed to a statement that failed."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return (OSError,)
    return (
        OSError,
        asyncpg.PostgresConnectionError,  # cannot connect now, too many connections …
        asyncpg.AdminShutdownError,  # the server was stopped or restarted under the connection
        asyncpg.CrashShutdownError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,  # "connection is closed"
    )


def database_failures() -> tuple[type[BaseException], ...]:
    """Every error class `is_unreachable` may say yes to."""
    return (DBAPIError, PoolTimeout, *_connection_errors())


def is_unreachable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached, rather than that a statement
    failed: a server down or restarting, a dropped connection, no connection free in time."""
    if isinstance(error, PoolTimeout):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error.orig, _connection_errors())
    # A refused connection comes up from the driver unwrapped, as a plain OSError; an OSError
    # from anywhere else (a file, another service) is not the database's.
    return isinstance(error, _connection_errors()) and _raised_in_the_driver(error)


def _raised_in_the_driver(error: BaseException) -> bool:
    frame = error.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy", "aiosqlite")):
            return True
        frame = frame.tb_next
    return False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys make ON DELETE CASCADE real; WAL lets readers go on while one writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """Owns the engine and hands out sessions; one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        options: dict[str, Any] = {"pool_pre_ping": True}
        if is_sqlite(url):
            options = {"connect_args": {"timeout": 30}}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if is_sqlite(url):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # A session class of its own, so that session events listened for on one database
        # (see core.conversation_events.announce_commits) stay on it.
        self.session_class: type[Session] = type("DatabaseSession", (Session,), {})
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self.session_class
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
