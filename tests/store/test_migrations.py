"""Migrations: they build exactly the schema the models describe, on SQLite and PostgreSQL."""

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, delete, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from tertulia.core.accounts import NewAccount, Principal, register
from tertulia.core.bots import BotSettings, create_bot
from tertulia.store.migrate import alembic_config, migrate
from tertulia.store.session import Database, is_sqlite
from tertulia.store.tables import Account, Base, Bot, managed_by_models


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": True, "include_name": managed_by_models},
    )
    return list(compare_metadata(context, Base.metadata))


async def differences(database: Database) -> list[Any]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(schema_differences)


async def applied_revisions(database: Database) -> list[str]:
    async with database.engine.connect() as connection:
        return list((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())


def head(database: Database) -> str:
    revision = ScriptDirectory.from_config(alembic_config(database.url)).get_current_head()
    assert revision is not None
    return revision


async def test_the_migrated_schema_matches_the_models(database: Database) -> None:
    assert await differences(database) == []
    assert await applied_revisions(database) == [head(database)]


async def test_migrating_again_changes_nothing_and_keeps_the_data(database: Database) -> None:
    async with database.session() as session:
        account = await register(session, NewAccount(email="kept@example.com", password=None))
        await create_bot(session, Principal(account), BotSettings(name="Kept"))

    await migrate(database)
    await migrate(database)

    assert await applied_revisions(database) == [head(database)]
    assert await differences(database) == []
    async with database.session() as session:
        assert list(await session.scalars(select(Bot.name))) == ["Kept"]


async def test_two_concurrent_migrations_of_a_fresh_database_both_succeed(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        outcomes = await asyncio.gather(migrate(first), migrate(second), return_exceptions=True)
        assert outcomes == [None, None]
        assert await applied_revisions(first) == [head(first)]
        assert await differences(first) == []
    finally:
        await first.dispose()
        await second.dispose()


async def test_an_unmigrated_database_differs_from_the_models(database_url: str) -> None:
    # The comparison the tests above rely on does see a missing schema.
    fresh = Database(database_url)
    try:
        async with fresh.engine.connect() as connection:
            assert await connection.run_sync(lambda sync: inspect(sync).get_table_names()) == []
        assert len(await differences(fresh)) >= len(Base.metadata.tables)
    finally:
        await fresh.dispose()


async def test_foreign_keys_are_enforced_and_deleting_an_account_cascades(database: Database) -> None:
    async with database.session() as session:
        owner = await register(session, NewAccount(email="owner@example.com", password=None))
        other = await register(session, NewAccount(email="other@example.com", password=None))
        await create_bot(session, Principal(owner), BotSettings(name="Doomed"))
        await create_bot(session, Principal(other), BotSettings(name="Survivor"))

    async with database.session() as session:
        # A plain DELETE: the database itself, not the ORM, must remove the account's bots.
        await session.execute(delete(Account.__table__).where(Account.__table__.c.id == owner.id))
        await session.commit()
        assert list(await session.scalars(select(Bot.name))) == ["Survivor"]

    async with database.session() as session:
        session.add(Bot(account_id="usr_nobody", name="Orphan", knowledge_bases=[], models=[]))
        with pytest.raises(IntegrityError):
            await session.commit()
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Bot)) == 1


async def test_sqlite_connections_have_foreign_keys_switched_on(database: Database) -> None:
    if not is_sqlite(database.url):
        pytest.skip("a SQLite setting")
    async with database.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
