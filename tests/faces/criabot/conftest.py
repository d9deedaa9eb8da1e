"""CriaBot helpers: an account with its master API key, numbered models, bots by name."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faces.chatagent.conftest import User, sign_up
from tests.providers import cross_encoder


@dataclass
class Owner:
    user: User  # the same account through ChatAgent
    key: str  # the account's own API key: CriaBot's master key

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


def assert_envelope(response: httpx.Response, status: int = 200, code: str = "SUCCESS") -> dict[str, Any]:
    """CriaBot's envelope, with the same status in the body as on the wire."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_700_000_000
    return dict(body)


async def owner(client: httpx.AsyncClient, name: str) -> Owner:
    user = await sign_up(client, name)
    created = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "master"})
    assert created.status_code == 201, created.text
    return Owner(user, created.json()["key"])


@pytest.fixture
async def client(make_client, tmp_path: Path) -> httpx.AsyncClient:
    """A server with a cross-encoder of its own, so the catalog has a rerank model too."""
    words = "what is the capital of france paris largest city hello bot this a test node".split()
    model = cross_encoder.build(tmp_path / "overlap-reranker", words)
    return await make_client(rerank_model_path=model)


@pytest.fixture
async def cria(client: httpx.AsyncClient) -> Owner:
    return await owner(client, "cria")


@pytest.fixture
async def other(client: httpx.AsyncClient) -> Owner:
    return await owner(client, "other")


async def catalog(client: httpx.AsyncClient, who: Owner) -> dict[tuple[str, str], int]:
    """(task type, model) → number."""
    response = await client.get("/api/v1/models/catalog", headers=who.user.headers)
    assert response.status_code == 200, response.text
    return {(item["task_type"], item["model"]): item["id"] for item in response.json()["models"]}


async def create_bot(client: httpx.AsyncClient, who: Owner, name: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/bots/{name}/manage/create", headers=who.headers, json=body)
    return assert_envelope(response)


async def upload_nodes(client: httpx.AsyncClient, who: Owner, bot: str, name: str, *texts: str) -> dict:
    body = {
        "file_name": name,
        "file_contents": {"nodes": [{"text": text, "metadata": {}} for text in texts], "assets": []},
        "file_metadata": {},
    }
    return assert_envelope(await client.post(f"/bots/{bot}/documents/upload", headers=who.headers, json=body))
