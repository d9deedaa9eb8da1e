"""The `tertulia` command and the README, run for real: a server process over TCP."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tertulia.settings import Settings

README = Path(__file__).parents[1] / "README.md"


def tertulia(*args: str, env: dict[str, str], **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tertulia", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **options,  # type: ignore[arg-type]
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TERTULIA_")}
    # The assembled local model is shared with the rest of the suite (it is 491 MB).
    cache = str(Settings().model_cache_dir)
    return clean | {
        "TERTULIA_DATABASE_URL": database_url,
        "HOME": str(tmp_path),
        "TERTULIA_MODEL_CACHE_DIR": cache,
    }


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tertulia", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited:\n{process.stdout.read() if process.stdout else ''}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become healthy in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_migrate_reports_the_database_without_its_password(env: dict[str, str]) -> None:
    result = tertulia("migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout
    again = tertulia("migrate", env=env)
    assert again.returncode == 0, again.stderr


def test_a_worker_needs_a_broker(env: dict[str, str]) -> None:
    result = tertulia("worker", env=env)
    assert result.returncode == 1
    assert "TERTULIA_CELERY_BROKER_URL" in result.stderr


def test_serve_health_and_docs(server: str) -> None:
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["version"] and health["uptime"] >= 0
    assert httpx.get(f"{server}/openapi.json").json()["info"]["title"] == "Tertulia"
    assert "swagger" in httpx.get(f"{server}/docs").text.lower()


def test_user_create_prints_a_working_api_key_once(server: str, env: dict[str, str]) -> None:
    result = tertulia("user", "create", "cli-user@example.com", env=env)
    assert result.returncode == 0, result.stderr
    key = re.search(r"api key: (\S+)", result.stdout)
    assert key, result.stdout
    me = httpx.get(f"{server}/api/v1/auth/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert me.status_code == 200
    assert me.json()["email"] == "cli-user@example.com"
    listed = httpx.get(f"{server}/api/v1/auth/api-keys", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert key.group(1) not in listed.text  # the secret is never shown again

    duplicate = tertulia("user", "create", "cli-user@example.com", env=env)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr


def test_the_readme_walk_through_works_as_written(server: str, tmp_path: Path) -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    walk = next(block for block in blocks if "BASE=" in block)
    keys = next(block for block in blocks if "api-keys" in block)
    bytchat = next(block for block in blocks if "/token" in block)
    script = walk.replace("BASE=http://127.0.0.1:8000", f"BASE={server}") + keys + bytchat
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    compact = result.stdout.replace(" ", "")
    assert '"total":1' in compact and '"name":"Helpdesk"' in compact
    lines = result.stdout.splitlines()
    assert any(line.strip().startswith("Paris") for line in lines), result.stdout
    chunks = [line for line in lines if line.startswith("data: ")]
    assert chunks[-1] == "data: [DONE]" and len(chunks) > 3
    assert "Madrid" in "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or "" for line in chunks[:-1]
    )
    assert '"key":"tk_' in compact
    assert '"email":"lucia@example.com"' in compact  # Bytchat's sign-up; its chat answered last
    assert result.stdout.rstrip().splitlines()[-1].strip()
