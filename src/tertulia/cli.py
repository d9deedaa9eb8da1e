"""The `tertulia` command: serve, worker, migrate, user."""

import asyncio
import getpass
import logging
import logging.config
import os
import shutil
import tempfile
from collections.abc import Coroutine
from typing import Any

import typer
import uvicorn

from tertulia import __version__
from tertulia.core import accounts
from tertulia.core.errors import TertuliaError
from tertulia.log_config import logging_config
from tertulia.settings import Settings
from tertulia.store.migrate import migrate
from tertulia.store.session import Database

app = typer.Typer(help="Tertulia: a chatbot platform server.", no_args_is_help=True)
user_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")

log = logging.getLogger("tertulia.serve")


async def _migrate(settings: Settings) -> None:
    database = Database(settings.database_url)
    try:
        await migrate(database)
    finally:
        await database.dispose()


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    settings = Settings()
    asyncio.run(_migrate(settings))
    typer.echo(f"database is up to date ({_display_url(settings.database_url)})")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(
        1, min=1, help="Server processes sharing the port; more than one needs TERTULIA_REDIS_URL."
    ),
    forwarded_allow_ips: str | None = typer.Option(
        None,
        help="Proxies (comma-separated addresses, or *) whose X-Forwarded-For and -Proto are "
        "believed: the client address rate limits count by. Unset: no proxy is believed.",
    ),
) -> None:
    """Migrate the database, then serve every face on HOST:PORT."""
    settings = Settings()
    if workers > 1 and not settings.redis_url:
        # Each process would count rate limits and deliver conversation events on its own.
        typer.echo("error: --workers above 1 needs TERTULIA_REDIS_URL (redis://host:6379/0)", err=True)
        raise typer.Exit(1)
    log_config = logging_config(settings)
    logging.config.dictConfig(log_config)
    asyncio.run(_migrate(settings))
    log.info(
        "Tertulia %s on http://%s:%s, %s process(es) (%s)",
        __version__,
        host,
        port,
        workers,
        _display_url(settings.database_url),
    )
    # Several processes add up their Prometheus figures in files of a folder they share: a
    # fresh one per start, unless the operator named one (and then empties it between starts).
    metrics_folder = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_folder = tempfile.mkdtemp(prefix="tertulia-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder
    try:
        # The factory builds each process's app from the same TERTULIA_* environment; no
        # process keeps state of its own, so any of them may answer any request.
        uvicorn.run(
            "tertulia.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
            log_config=log_config,
            log_level=settings.log_level.lower(),
        )
    finally:
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)


@app.command()
def worker(
    concurrency: int = typer.Option(
        0, help="Jobs run at once, one process each (default: TERTULIA_INGEST_CONCURRENCY)."
    ),
) -> None:
    """Migrate the database, then run the jobs the servers send through the Celery broker."""
    settings = Settings()
    if not settings.celery_broker_url:
        typer.echo("error: set TERTULIA_CELERY_BROKER_URL (redis://host:6379/0) to run a worker", err=True)
        raise typer.Exit(1)
    from tertulia.jobs.celery_app import run_worker
    from tertulia.runtime import start_worker_runtime

    asyncio.run(_migrate(settings))
    typer.echo(f"Tertulia {__version__} worker ({_display_url(settings.database_url)})")
    run_worker(settings, lambda: start_worker_runtime(settings), concurrency or settings.ingest_concurrency)


@user_app.command("create")
def create_user(
    email: str,
    password: bool = typer.Option(False, "--password", help="Also set a password (asked for)."),
    plan: str = typer.Option("standard", help="standard, premium or enterprise."),
    admin: bool = typer.Option(False, "--admin", help="An admin: sees the whole server's monitoring."),
) -> None:
    """Create an account and print an API key for it (shown once)."""
    secret = getpass.getpass("Password: ") if password else None
    settings = Settings()

    async def create() -> str:
        await _migrate(settings)
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                account = await accounts.register(
                    session, accounts.NewAccount(email=email, password=secret, plan=plan)
                )
                if admin:
                    account = await accounts.set_role(session, account.email, "admin")
                issued = await accounts.create_api_key(session, accounts.Principal(account), "cli")
                role = " (admin)" if admin else ""
                return f"created {account.email}{role} ({account.id})\napi key: {issued.secret}"
        finally:
            await database.dispose()

    _run_or_exit(create())


@user_app.command("promote")
def promote_user(login: str = typer.Argument(..., help="The account's email or username.")) -> None:
    """Make an account an admin: it sees the whole server's monitoring (figures and logs)."""
    _run_or_exit(_set_role(login, "admin"))


@user_app.command("demote")
def demote_user(login: str = typer.Argument(..., help="The account's email or username.")) -> None:
    """Make an admin an ordinary account again: it sees only its own monitoring."""
    _run_or_exit(_set_role(login, "user"))


async def _set_role(login: str, role: str) -> str:
    settings = Settings()
    await _migrate(settings)
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            account = await accounts.set_role(session, login, role)
            return (
                f"{account.email} ({account.username}) is now {'an admin' if role == 'admin' else 'a user'}"
            )
    finally:
        await database.dispose()


def _run_or_exit(work: Coroutine[Any, Any, str]) -> None:
    """Prints what `work` says, or its error on standard error with exit status 1."""
    try:
        typer.echo(asyncio.run(work))
    except TertuliaError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from error


def _display_url(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
