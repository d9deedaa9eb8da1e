"""Scale-out fixtures: a Redis broker on a database index of the tests' own, and real
`tertulia worker` processes running on the test's database."""

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

import tertulia
from tertulia.settings import Settings
from tertulia.store.session import Database
from tests.conftest import AppFactory

# The Redis the scale tests use; its database is flushed by them, so it is one of their own.
REDIS_URL = os.environ.get("TERTULIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
# Short, so that a task of a killed worker is delivered again, and its job taken over, soon.
QUICK_RECOVERY = {"celery_visibility_timeout_seconds": 2, "job_lease_seconds": 4.0}


@pytest.fixture
def broker_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def celery_settings(database: Database, broker_url: str, tmp_path: Path) -> dict[str, object]:
    """What the API and the workers of a test share."""
    return {
        "jobs": "celery",
        "celery_broker_url": broker_url,
        "database_url": database.url,
        "chroma_path": tmp_path / "chroma",
        **QUICK_RECOVERY,
    }


@pytest.fixture
async def celery_client(make_client: AppFactory, celery_settings: dict[str, object]) -> httpx.AsyncClient:
    """The API with TERTULIA_JOBS=celery: it runs no job itself."""
    return await make_client(**{k: v for k, v in celery_settings.items() if k != "database_url"})


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """kill -9, the worker and its pool's processes alike (a machine lost mid-job)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def start_worker(
    celery_settings: dict[str, object], tmp_path: Path
) -> AsyncIterator[Callable[..., Worker]]:
    """Starts `tertulia worker` processes on this test's database and broker."""
    source = str(Path(tertulia.__file__).parents[1])  # this checkout's code, in the worker too
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERTULIA_")} | {
        f"TERTULIA_{name.upper()}": str(value) for name, value in celery_settings.items()
    }
    env |= {
        "PYTHONPATH": os.pathsep.join([source, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "TERTULIA_MODEL_CACHE_DIR": str(Settings().model_cache_dir),
        "HF_HUB_OFFLINE": "1",
    }
    workers: list[Worker] = []

    def start(concurrency: int = 1, **settings: object) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        own = {f"TERTULIA_{name.upper()}": str(value) for name, value in settings.items()}
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "tertulia", "worker", "--concurrency", str(concurrency)],
                env=env | own,
                cwd=tmp_path,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so that kill() reaches the pool
            )
        workers.append(Worker(process, log))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()
