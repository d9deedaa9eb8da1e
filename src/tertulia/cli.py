"""The `tertulia` command: serve, worker, migrate, user."""

import asyncio
import getpass

import typer
import uvicorn

from tertulia import __version__
from tertulia.core import accounts
from tertulia.core.errors import TertuliaError
from tertulia.settings import Settings
from tertulia.store.migrate import migrate
from tertulia.store.session import Database

app = typer.Typer(help="Tertulia: a chatbot platform server.", no_args_is_help=True)
user_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")


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
    asyncio.run(_migrate(settings))
    typer.echo(
        f"Tertulia {__version__} on http://{host}:{port}, {workers} process(es) "
        f"({_display_url(settings.database_url)})"
    )
    # The factory builds each process's app from the same TERTULIA_* environment; no process
    # keeps state of its own, so any of them may answer any request.
    uvicorn.run(
        "tertulia.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="info",
    )


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
                issued = await accounts.create_api_key(session, accounts.Principal(account), "cli")
                return f"created {account.email} ({account.id})\napi key: {issued.secret}"
        finally:
            await database.dispose()

    try:
        typer.echo(asyncio.run(create()))
    except TertuliaError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from error


def _display_url(url: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    app()
