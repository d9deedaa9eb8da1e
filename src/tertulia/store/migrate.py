"""Applies Alembic migrations to a database, from the CLI, the server start or the tests.

Safe to run from several processes (and several event loops of one process) at once:
they take turns. PostgreSQL serialises them with an advisory lock, SQLite with a lock
file beside the database, and one process's runs with a lock of its own, since Alembic's
`context` and `op` are process-wide.
"""

import fcntl
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from alembic import command
from alembic.config import Config
from anyio import to_thread
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from tertulia.store import pgvector
from tertulia.store.session import Database, is_sqlite

MIGRATIONS = Path(__file__).parent / "migrations"
POSTGRES_LOCK_ID = 7213401

_this_process = threading.Lock()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@asynccontextmanager
async def _sqlite_file_lock(url: str) -> AsyncIterator[None]:
    database = make_url(url).database
    if not database or database == ":memory:":
        yield
        return
    lock_file = await to_thread.run_sync(_locked_file, Path(f"{database}.migrate.lock"))
    try:
        yield
    finally:
        lock_file.close()  # closing releases the lock


def _locked_file(path: Path) -> IO[str]:
    lock_file = path.open("a")
    fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
    return lock_file


async def migrate(database: Database, revision: str = "head") -> None:
    """Brings the schema to `revision`."""
    config = alembic_config(database.url)

    def upgrade(connection: Connection) -> None:
        if not is_sqlite(database.url):
            connection.execute(text(f"SELECT pg_advisory_xact_lock({POSTGRES_LOCK_ID})"))  # until commit
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if revision == "head":
            pgvector.enable(connection)  # takes up a pgvector installed since 0013 ran

    # Acquired in a worker thread so that waiting never blocks this event loop.
    await to_thread.run_sync(_this_process.acquire)
    try:
        if is_sqlite(database.url):
            async with _sqlite_file_lock(database.url), database.engine.begin() as connection:
                await connection.run_sync(upgrade)
        else:
            async with database.engine.begin() as connection:
                await connection.run_sync(upgrade)
    finally:
        _this_process.release()
