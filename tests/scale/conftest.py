"""Redis for the scale tests: a database of our own on the machine's Redis, and redis-servers
of their own that a test may stop, freeze and start again."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.live_server import free_port

# The machine's (and CI's) Redis; the tests use one database index of it and flush only that.
SHARED_REDIS_URL = os.environ.get("TERTULIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(SHARED_REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"the scale tests need Redis at {SHARED_REDIS_URL} (TERTULIA_TEST_REDIS_URL): {error}")
    client.flushdb()
    try:
        yield SHARED_REDIS_URL
    finally:
        client.flushdb()
        client.close()


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
