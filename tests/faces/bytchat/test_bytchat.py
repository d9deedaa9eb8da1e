"""The Bytchat face, example by example from bytchat-api.txt, over HTTP against the real app."""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tertulia.settings import Settings
from tertulia.store.session import Database
from tests.live_server import serve_in_thread


@dataclass
class BytchatUser:
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, email: str, password: str = "una-clave-segura") -> BytchatUser:
    created = await client.post("/users/", json={"email": email, "password": password})
    assert created.status_code == 200, created.text
    login = await client.post("/token", data={"username": email, "password": password})
    assert login.status_code == 200, login.text
    return BytchatUser(email, login.json()["access_token"])


@pytest.fixture
async def ana(client: httpx.AsyncClient) -> BytchatUser:
    return await sign_up(client, "nuevo.usuario@ejemplo.com")


@pytest.fixture
async def beto(client: httpx.AsyncClient) -> BytchatUser:
    return await sign_up(client, "beto@ejemplo.com")


async def new_bot(client: httpx.AsyncClient, user: BytchatUser, **body: Any) -> dict[str, Any]:
    response = await client.post("/bots/", headers=user.headers, json={"name": "Asistente", **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def trained(client: httpx.AsyncClient, user: BytchatUser, bot_id: str, name: str, text: str) -> dict:
    response = await client.post(
        f"/bots/{bot_id}/train", headers=user.headers, files={"file": (name, text.encode(), "text/plain")}
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    pause = 0.05
    for _ in range(200):
        job = (await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)).json()
        if job["status"] in ("done", "failed"):
            return dict(job)
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.5)
    raise AssertionError("the training job did not finish")


async def test_the_root_welcomes_with_the_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert "Bytchat" in body["message"] and body["version"]


async def test_sign_up_returns_the_user_without_the_password_and_login_gives_a_bearer_token(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/users/", json={"email": "nuevo.usuario@ejemplo.com", "password": "una-clave-segura"}
    )
    assert created.status_code == 200
    user = created.json()
    assert user["email"] == "nuevo.usuario@ejemplo.com" and user["id"] and user["is_active"] is True
    assert not any("password" in key for key in user)

    again = await client.post(
        "/users/", json={"email": "nuevo.usuario@ejemplo.com", "password": "otra-clave-x"}
    )
    assert again.status_code == 400 and "already" in again.json()["detail"]

    token = await client.post(
        "/token", data={"username": "nuevo.usuario@ejemplo.com", "password": "una-clave-segura"}
    )
    assert token.status_code == 200
    assert set(token.json()) == {"access_token", "token_type"} and token.json()["token_type"] == "bearer"

    wrong = await client.post(
        "/token", data={"username": "nuevo.usuario@ejemplo.com", "password": "no-es-esta"}
    )
    assert wrong.status_code == 401 and isinstance(wrong.json()["detail"], str)
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    missing = await client.post("/token", data={"username": "nuevo.usuario@ejemplo.com"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "password"]


async def test_the_documents_bot_with_its_initial_model_is_created_and_seen_by_chatagent(
    client: httpx.AsyncClient, ana: BytchatUser
) -> None:
    bot = await new_bot(
        client,
        ana,
        name="Mi Nuevo Asistente",
        description="Un bot para pruebas.",
        initial_configs=[
            {"task_type": "general", "provider": "google", "model_id": "gemini-1.5-flash-latest"}
        ],
    )
    assert bot["name"] == "Mi Nuevo Asistente" and bot["description"] == "Un bot para pruebas."
    assert [(m["task_type"], m["provider"], m["model_id"]) for m in bot["models"]] == [
        ("general", "google", "gemini-1.5-flash-latest")
    ]
    listed = await client.get("/bots/", headers=ana.headers)
    assert [item["id"] for item in listed.json()] == [bot["id"]]
    # The same bot through the ChatAgent face of the same account.
    seen = await client.get(f"/api/v1/bots/{bot['id']}", headers=ana.headers)
    assert seen.status_code == 200 and seen.json()["name"] == "Mi Nuevo Asistente"


async def test_the_system_prompt_changes_and_models_join_the_toolbox(
    client: httpx.AsyncClient, ana: BytchatUser
) -> None:
    bot = await new_bot(client, ana)
    updated = await client.put(
        f"/bots/{bot['id']}",
        headers=ana.headers,
        json={"system_prompt": "Ahora eres un robot pirata que habla como tal."},
    )
    assert updated.status_code == 200
    assert updated.json()["system_prompt"] == "Ahora eres un robot pirata que habla como tal."
    seen = (await client.get(f"/api/v1/bots/{bot['id']}", headers=ana.headers)).json()
    assert seen["llm_config"]["system_prompt"] == "Ahora eres un robot pirata que habla como tal."

    added = await client.post(
        f"/bots/{bot['id']}/models/",
        headers=ana.headers,
        json={"provider": "openai", "model_id": "gpt-4o", "task_type": "complex"},
    )
    assert added.status_code == 200, added.text
    assert (added.json()["provider"], added.json()["model_id"], added.json()["task_type"]) == (
        "openai",
        "gpt-4o",
        "complex",
    )
    unknown = await client.post(
        f"/bots/{bot['id']}/models/",
        headers=ana.headers,
        json={"provider": "skynet", "model_id": "t-800", "task_type": "general"},
    )
    assert unknown.status_code == 400 and "skynet" in unknown.json()["detail"]
    listed = (await client.get("/bots/", headers=ana.headers)).json()
    assert [(m["provider"], m["task_type"]) for m in listed[0]["models"]] == [("openai", "complex")]


async def test_training_runs_in_the_background_and_the_chat_streams_a_grounded_answer(
    client: httpx.AsyncClient, ana: BytchatUser, database: Database, tmp_path: Path
) -> None:
    bot = await new_bot(client, ana, name="Faro")
    # Greedy decoding (set through ChatAgent: Bytchat has no field for it), for a steady answer.
    steady = await client.put(
        f"/api/v1/bots/{bot['id']}",
        headers=ana.headers,
        json={"llm_config": {"temperature": 0, "max_tokens": 40}},
    )
    assert steady.status_code == 200, steady.text
    job = await trained(
        client, ana, bot["id"], "faro.txt", "El faro de Punta Gris se enciende cada noche a las 21:40."
    )
    assert job["status"] == "done", job

    # A real server on a TCP port, read as it writes: the answer arrives in pieces.
    settings = Settings(database_url=database.url, chroma_path=tmp_path / "chroma")
    pieces: list[bytes] = []
    with serve_in_thread(settings) as address:
        async with (
            httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as live,
            live.stream(
                "POST",
                f"/chat/{bot['id']}",
                params={"query": "¿A qué hora se enciende el faro de Punta Gris? Responde corto."},
                headers=ana.headers,
            ) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            assert response.headers.get("transfer-encoding") == "chunked"
            async for piece in response.aiter_raw():
                pieces.append(piece)
    answer = b"".join(pieces).decode()
    assert len(pieces) > 1, "the answer should arrive in several pieces"
    assert "21:40" in answer

    # The trained document is in the bot's own knowledge base, seen through ChatAgent too.
    seen = (await client.get(f"/api/v1/bots/{bot['id']}", headers=ana.headers)).json()
    [base_id] = seen["knowledge_base_ids"]
    docs = (await client.get(f"/api/v1/knowledge/bases/{base_id}/documents", headers=ana.headers)).json()
    assert [d["name"] for d in docs["documents"]] == ["faro.txt"]


async def test_training_accepts_only_txt_files_and_stores_nothing_else(
    client: httpx.AsyncClient, ana: BytchatUser
) -> None:
    bot = await new_bot(client, ana)
    response = await client.post(
        f"/bots/{bot['id']}/train",
        headers=ana.headers,
        files={"file": ("manual.pdf", b"%PDF-1.7 not really", "application/pdf")},
    )
    assert response.status_code == 400 and ".txt" in response.json()["detail"]
    no_file = await client.post(f"/bots/{bot['id']}/train", headers=ana.headers)
    assert no_file.status_code == 422 and no_file.json()["detail"][0]["loc"] == ["body", "file"]
    empty = await client.post(
        f"/bots/{bot['id']}/train", headers=ana.headers, files={"file": ("vacio.txt", b"", "text/plain")}
    )
    assert empty.status_code == 400
    seen = (await client.get(f"/api/v1/bots/{bot['id']}", headers=ana.headers)).json()
    assert seen["knowledge_base_ids"] == []  # no knowledge base was made for refused files


async def test_bad_requests_get_fastapi_errors(client: httpx.AsyncClient, ana: BytchatUser, beto) -> None:
    bot = await new_bot(client, ana)
    anonymous = await client.get("/bots/")
    assert anonymous.status_code == 401 and anonymous.json() == {"detail": "missing credentials"}
    bad_token = await client.get("/bots/", headers={"Authorization": "Bearer not-a-token"})
    assert bad_token.status_code == 401 and isinstance(bad_token.json()["detail"], str)

    # Another account's bot does not exist for beto, whatever he tries.
    for method, path, kwargs in [
        ("PUT", f"/bots/{bot['id']}", {"json": {"system_prompt": "x"}}),
        (
            "POST",
            f"/bots/{bot['id']}/models/",
            {"json": {"provider": "openai", "model_id": "m", "task_type": "chat"}},
        ),
        ("POST", f"/bots/{bot['id']}/train", {"files": {"file": ("a.txt", b"hola", "text/plain")}}),
        ("POST", f"/chat/{bot['id']}", {"params": {"query": "hola"}}),
    ]:
        response = await client.request(method, path, headers=beto.headers, **kwargs)
        assert response.status_code == 404, (path, response.text)
        assert response.json() == {"detail": "bot not found"}
    assert (await client.get("/bots/", headers=beto.headers)).json() == []

    no_query = await client.post(f"/chat/{bot['id']}", headers=ana.headers)
    assert no_query.status_code == 422 and no_query.json()["detail"][0]["loc"] == ["query", "query"]
    bad_body = await client.post("/bots/", headers=ana.headers, json={"description": "no name"})
    assert bad_body.status_code == 422 and bad_body.json()["detail"][0]["loc"] == ["body", "name"]
    nothing = await client.put(f"/bots/{bot['id']}", headers=ana.headers, json={})
    assert nothing.status_code == 400


async def test_an_oversized_training_file_is_refused(make_client) -> None:
    client = await make_client(max_upload_bytes=2048)
    ana = await sign_up(client, "ana@ejemplo.com")
    bot = await new_bot(client, ana)
    response = await client.post(
        f"/bots/{bot['id']}/train",
        headers=ana.headers,
        files={"file": ("grande.txt", b"palabra " * 1000, "text/plain")},
    )
    assert response.status_code == 413 and isinstance(response.json()["detail"], str)
    seen = (await client.get(f"/api/v1/bots/{bot['id']}", headers=ana.headers)).json()
    assert seen["knowledge_base_ids"] == []
