"""Alembic environment: runs on a connection handed over by tertulia.store.migrate."""

from alembic import context

from tertulia.store.tables import Base, managed_by_models

config = context.config


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=managed_by_models,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tertulia migrate`, which opens the connection")
run_migrations(connection)
