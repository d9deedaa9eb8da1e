"""PostgreSQL restarted under a running server: while it is down, requests get a prompt 503
in each face's envelope (never a hang, never a 500), and once it is back the same server
answers again without being restarted itself."""

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tertulia.settings import Settings
from tertulia.store.migrate import migrate
from tertulia.store.session import Database
from tests.faces.chatagent.conftest import sign_up
from tests.live_server import serve_in_thread

pytestmark = pytest.mark.scale

PROMPTLY = 15.0  # seconds: far more than a refused connection takes; a hang takes forever


class OwnPostgres:
    """A PostgreSQL 16 (the pgserver package's) of this test's own, to stop and start."""

    def __init__(self, folder: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(folder, cleanup_mode="delete")

    @property
    def url(self) -> str:
        folder = self.server.get_postmaster_info().socket_dir
        return f"postgresql+asyncpg://postgres@/postgres?host={folder}"

    def stop(self) -> None:
        from pgserver import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    pytest.importorskip("pgserver", reason="the restart test starts a PostgreSQL of its own from pgserver")
    own = OwnPostgres(tmp_path / "pg")
    try:
        yield own
    finally:
        own.server.cleanup()


async def test_the_server_outlives_a_database_restart(postgres: OwnPostgres, tmp_path: Path) -> None:
    url = postgres.url
    database = Database(url)
    await migrate(database)
    await database.dispose()
    settings = Settings(database_url=url, chroma_path=tmp_path / "chroma")
    with serve_in_thread(settings) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as client:
            user = await sign_up(client, "alice")
            key = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "cbk"})
            cbk = {"Authorization": f"Token {key.json()['key']}"}
            assert (await client.get("/api/v1/auth/me", headers=user.headers)).status_code == 200
            assert (await client.get("/v1/bot/list", headers=cbk)).status_code == 200

            await anyio.to_thread.run_sync(postgres.stop)

            started = time.monotonic()
            chatagent = await client.get("/api/v1/auth/me", headers=user.headers)
            chatbotkit = await client.get("/v1/bot/list", headers=cbk)
            bearer = {"Authorization": f"Bearer {key.json()['key']}"}
            agents = await client.get("/api/v2/agents", headers=bearer)
            assert time.monotonic() - started < PROMPTLY
            assert chatagent.status_code == 503, chatagent.text
            assert chatagent.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            assert "database is not reachable" in chatagent.json()["error"]["message"]
            assert chatbotkit.status_code == 503
            assert chatbotkit.json()["code"] == "STORE_SERVICE_UNAVAILABLE"
            assert agents.status_code == 503 and agents.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            assert (await client.get("/health")).status_code == 503

            await anyio.to_thread.run_sync(postgres.start)

            assert (await client.get("/api/v1/auth/me", headers=user.headers)).status_code == 200
            assert (await client.get("/v1/bot/list", headers=cbk)).status_code == 200
            made = await client.post("/v1/bot/create", headers=cbk, json={"name": "After the restart"})
            assert made.status_code == 200, made.text
            assert (await client.get("/health")).json()["status"] == "ok"
