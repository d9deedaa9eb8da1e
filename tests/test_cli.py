"""The `tertulia` command and the README, run for real: a server process over TCP."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def serving(env: dict[str, str], cwd: Path, output: Path) -> Iterator[str]:
    """`tertulia serve` on a free port, its output (standard output and error) to `output`."""
    port = free_port()
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tertulia", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited:\n{output.read_text()}")
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


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with serving(env, tmp_path, tmp_path / "server.log") as base:
        yield base


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


def api_key(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    key = re.search(r"api key: (\S+)", result.stdout)
    assert key, result.stdout
    return {"Authorization": f"Bearer {key.group(1)}"}


def monitoring_scope(server: str, headers: dict[str, str]) -> str:
    response = httpx.get(f"{server}/api/v1/monitoring/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["scope"])


def test_admins_are_made_on_the_command_line_and_see_the_whole_server(
    server: str, env: dict[str, str]
) -> None:
    created = tertulia("user", "create", "ops@example.com", "--admin", env=env)
    assert "(admin)" in created.stdout
    assert monitoring_scope(server, api_key(created)) == "server"

    someone = api_key(tertulia("user", "create", "someone@example.com", env=env))
    assert monitoring_scope(server, someone) == "account"
    username = httpx.get(f"{server}/api/v1/auth/me", headers=someone).json()["username"]

    promoted = tertulia("user", "promote", "someone@example.com", env=env)
    assert promoted.returncode == 0 and "is now an admin" in promoted.stdout, promoted.stderr
    assert monitoring_scope(server, someone) == "server"  # the same key, from the next request
    demoted = tertulia("user", "demote", username, env=env)  # by username this time
    assert demoted.returncode == 0 and "is now a user" in demoted.stdout, demoted.stderr
    assert monitoring_scope(server, someone) == "account"

    unknown = tertulia("user", "promote", "nobody@example.com", env=env)
    assert unknown.returncode == 1 and "no account" in unknown.stderr


def unanswerable_conversation(server: str, username: str) -> tuple[dict[str, Any], str]:
    """A new account (its sign-up reply) and a conversation with a bot whose model (OpenAI,
    with no key on this server) cannot answer."""
    signed_up = httpx.post(
        f"{server}/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": "correct horse"},
    ).json()
    headers = {"Authorization": f"Bearer {signed_up['access_token']}"}
    bot = httpx.post(
        f"{server}/api/v1/bots/",
        headers=headers,
        json={"name": "Unkeyed", "llm_config": {"provider": "openai", "model": "gpt-4o"}},
    ).json()
    conversation = httpx.post(f"{server}/api/v1/conversations/", headers=headers, json={"bot_id": bot["id"]})
    return signed_up, str(conversation.json()["id"])


def failing_chat(server: str, request_id: str) -> str:
    """A message the bot cannot answer, sent with this request id; returns the account's id."""
    signed_up, conversation_id = unanswerable_conversation(server, "logged")
    sent = httpx.post(
        f"{server}/api/v1/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {signed_up['access_token']}", "X-Request-ID": request_id},
        json={"content": "Hello?"},
    )
    assert sent.status_code == 503, sent.text
    return str(signed_up["user_info"]["id"])


def test_serve_writes_json_lines_with_the_request_id_when_not_on_a_terminal(
    env: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "server.log"
    with serving(env, tmp_path, output) as base:  # TERTULIA_LOG_FORMAT unset: "auto"
        assert httpx.get(f"{base}/health", headers={"X-Request-ID": "probe-123"}).status_code == 200
        account_id = failing_chat(base, "ask-456")

    lines = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    probe = [line for line in lines if line["request_id"] == "probe-123"]
    assert [line["http"] for line in probe] == [
        {"client": probe[0]["http"]["client"], "method": "GET", "path": "/health", "status": 200}
    ]
    failure = next(line for line in lines if line["logger"] == "tertulia.chat")
    assert failure["level"] == "ERROR" and failure["message"].startswith("Failed to process message")
    assert failure["request_id"] == "ask-456" and failure["account_id"] == account_id
    assert failure["details"]["error_kind"] == "unavailable"
    started = next(line for line in lines if line["logger"] == "tertulia.serve")
    assert started["request_id"] is None and "process(es)" in started["message"]


def test_serve_writes_plain_lines_with_the_request_id_when_asked(env: dict[str, str], tmp_path: Path) -> None:
    output = tmp_path / "server.log"
    with serving(env | {"TERTULIA_LOG_FORMAT": "plain"}, tmp_path, output) as base:
        assert httpx.get(f"{base}/health", headers={"X-Request-ID": "probe-789"}).status_code == 200

    lines = output.read_text().splitlines()
    assert any(
        " uvicorn.access [probe-789] " in line and '"GET /health HTTP/1.1" 200' in line for line in lines
    )
    assert any(" tertulia.serve [-] Tertulia " in line for line in lines), lines


def test_a_websockets_log_lines_carry_an_id_of_its_own_and_its_account(
    env: dict[str, str], tmp_path: Path
) -> None:
    from websockets.sync.client import connect

    output = tmp_path / "server.log"
    with serving(env, tmp_path, output) as base:
        signed_up, conversation_id = unanswerable_conversation(base, "socket")
        address = base.replace("http://", "ws://")
        url = f"{address}/api/v1/ws/conversations/{conversation_id}?token={signed_up['access_token']}"
        with connect(url) as socket:
            socket.send(json.dumps({"type": "user_message", "content": "Hello?"}))
            while json.loads(socket.recv(timeout=60))["type"] != "error":
                pass

    lines = [json.loads(line) for line in output.read_text().splitlines() if line.strip()]
    failure = next(line for line in lines if line["logger"] == "tertulia.chat")
    assert failure["request_id"].startswith("ws_") and failure["account_id"] == signed_up["user_info"]["id"]
