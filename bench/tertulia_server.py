"""A real `tertulia serve` process for the benchmarks, on a throwaway SQLite file."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, **settings: str) -> None:
        """`settings` are TERTULIA_* variables without the prefix, e.g. llm_threads="2"."""
        self.folder = tempfile.TemporaryDirectory()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERTULIA_")}
        env["TERTULIA_DATABASE_URL"] = f"sqlite+aiosqlite:///{Path(self.folder.name) / 'bench.db'}"
        env["TERTULIA_RATE_LIMIT_PLANS"] = '{"standard": "1000000/minute"}'
        env["TERTULIA_ANONYMOUS_RATE_LIMIT"] = "1000/minute"
        env |= {f"TERTULIA_{name.upper()}": value for name, value in settings.items()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tertulia", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_healthy()

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def account(self, username: str = "bench") -> dict[str, str]:
        """Signs up and returns the Authorization header."""
        body = {"username": username, "email": f"{username}@example.com", "password": "a long secret"}
        token = httpx.post(f"{self.base}/api/v1/auth/register", json=body, timeout=30).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.folder.cleanup()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
