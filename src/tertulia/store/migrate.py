"""Applies Alembic migrations to a database, from the CLI, the server start or the tests."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from tertulia.store.session import Database, is_sqlite

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def migrate(database: Database, revision: str = "head") -> None:
    """Brings the schema to `revision`; safe to call from several processes at once."""
    config = alembic_config(database.url)

    def upgrade(connection: Connection) -> None:
        if not is_sqlite(database.url):
            # Serialises concurrent `tertulia migrate` runs; released at commit.
            connection.execute(text("SELECT pg_advisory_xact_lock(7213401)"))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(upgrade)
