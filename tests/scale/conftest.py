"""Scale-out fixtures: Redis (a database of the tests' own on the machine's Redis, and
redis-servers of their own that a test may stop, freeze and start again), and real
`tertulia worker` processes running on the test's database, and the whole deployment:
API processes and workers behind nginx."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

import tertulia
from tertulia.settings import Settings
from tertulia.store.session import Database, is_sqlite
from tests.conftest import TEST_REDIS_URL, AppFactory, empty_test_redis
from tests.live_server import free_port
from tests.providers import standins
from tests.providers.standins import StandIn
from tests.scale.topology import ApiProcess, Nginx, Topology, process_env


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The tests' own Redis database (on the machine's Redis), empty before and after."""
    empty_test_redis("the scale tests")
    yield TEST_REDIS_URL
    empty_test_redis("the scale tests")


class RedisServer:
    """A redis-server process on a port of its own, stopped and started at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def freeze(self) -> None:
        """Redis still holds its port but answers nothing: a hung server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        subprocess.run(["redis-server", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.fail(f"the Redis fault tests need redis-server on the PATH: {error}")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()  # SIGKILL ends a frozen server too


# Short, so that a task of a killed worker is delivered again, and its job taken over, soon.
QUICK_RECOVERY = {"celery_visibility_timeout_seconds": 2, "job_lease_seconds": 4.0}


@pytest.fixture
def broker_url(redis_url: str) -> str:
    """Celery's broker: the tests' own Redis database."""
    return redis_url


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


@pytest.fixture
async def start_topology(
    celery_settings: dict[str, object],
    start_worker: Callable[..., Worker],
    standin: StandIn,
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Topology]]:
    """Starts the scale-out deployment: API processes (`tertulia serve`) on this test's
    database, sharing its Redis database for rate limits and events and as Celery's broker,
    Celery workers, and nginx in front; model "gpt-4o" answers through the OpenAI stand-in."""
    if is_sqlite(str(celery_settings["database_url"])):
        pytest.skip(
            "several API processes with hundreds of concurrent writers need PostgreSQL "
            "(TERTULIA_TEST_POSTGRES_URL=pgserver); SQLite is a one-process database"
        )
    started: list[Topology] = []

    def start(apis: int = 2, worker_processes: int = 2, **overrides: object) -> Topology:
        settings: dict[str, object] = {
            **celery_settings,
            "redis_url": celery_settings["celery_broker_url"],
            "openai_api_key": standins.API_KEY,
            "openai_base_url": f"{standin.url}/v1",
            "model_cache_dir": Settings().model_cache_dir,
            **overrides,
        }
        env = process_env(settings) | {"HF_HUB_OFFLINE": "1"}
        processes = [
            ApiProcess(free_port(), env, tmp_path / f"api-{len(started)}-{index}.log", tmp_path)
            for index in range(apis)
        ]
        for process in processes:
            process.start()
        for _ in range(worker_processes):
            start_worker()
        for process in processes:
            process.wait_healthy()
        nginx = Nginx([process.port for process in processes])
        started.append(Topology(processes, nginx))
        nginx.start()
        return started[-1]

    yield start
    for topology in started:
        topology.nginx.stop()
        for process in topology.apis:
            process.stop()
