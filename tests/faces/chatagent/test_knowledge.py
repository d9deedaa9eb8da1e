"""ChatAgent /knowledge/bases over HTTP: create, list, read, delete, and their settings' rules."""

from typing import Any

import httpx
import pytest

from tests.faces.chatagent.conftest import User
from tests.faces.chatagent.test_errors import assert_error, is_utc_timestamp
from tests.providers.standins import API_KEY, StandIn

# The document's example, field for field.
DOCUMENT_KNOWLEDGE_BASE = {
    "name": "产品知识库",
    "description": "包含产品相关的所有文档",
    "vector_store_type": "chroma",
    "embedding_model": "text-embedding-ada-002",
    "chunk_size": 1000,
    "chunk_overlap": 200,
    "metadata": {"category": "product", "language": "zh"},
}


@pytest.fixture
async def client(make_client, standin: StandIn) -> httpx.AsyncClient:
    """The document's knowledge base embeds with OpenAI's text-embedding-ada-002, so this
    server has an OpenAI key: the local stand-in that speaks OpenAI's protocol."""
    return await make_client(openai_api_key=API_KEY, openai_base_url=standin.url + "/v1")


async def create_base(client: httpx.AsyncClient, user: User, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/knowledge/bases", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def list_bases(client: httpx.AsyncClient, user: User, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/knowledge/bases", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_document_example_creates_a_knowledge_base_with_its_settings(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        "/api/v1/knowledge/bases", json=DOCUMENT_KNOWLEDGE_BASE, headers=alice.headers
    )

    assert response.status_code == 201, response.text
    base = response.json()
    assert base["id"]
    assert base["user_id"] == alice.id
    assert {key: base[key] for key in DOCUMENT_KNOWLEDGE_BASE} == DOCUMENT_KNOWLEDGE_BASE
    assert is_utc_timestamp(base["created_at"]) and is_utc_timestamp(base["updated_at"])
    fetched = await client.get(f"/api/v1/knowledge/bases/{base['id']}", headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == base


async def test_a_name_alone_is_enough(client: httpx.AsyncClient, alice: User) -> None:
    base = await create_base(client, alice, name="FAQ")

    assert base["name"] == "FAQ"
    assert base["chunk_size"] > base["chunk_overlap"] >= 0
    assert base["chunking_strategy"] == "structured"
    assert base["vector_store_type"] == "builtin"
    assert base["metadata"] == {}


async def test_the_list_shows_the_accounts_knowledge_bases_with_a_total(
    client: httpx.AsyncClient, alice: User
) -> None:
    created = [await create_base(client, alice, name=name) for name in ("产品知识库", "售后知识库", "FAQ")]

    page = await list_bases(client, alice)
    first = await list_bases(client, alice, limit=2, offset=0)
    rest = await list_bases(client, alice, limit=2, offset=2)

    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    assert sorted(base["id"] for base in page["knowledge_bases"]) == sorted(base["id"] for base in created)
    assert {base["id"]: base for base in page["knowledge_bases"]} == {base["id"]: base for base in created}
    assert (first["total"], len(first["knowledge_bases"]), rest["total"], len(rest["knowledge_bases"])) == (
        3,
        2,
        3,
        1,
    )
    paged = [base["id"] for base in first["knowledge_bases"] + rest["knowledge_bases"]]
    assert sorted(paged) == sorted(base["id"] for base in created)


async def test_an_unknown_knowledge_base_is_not_found(client: httpx.AsyncClient, alice: User) -> None:
    assert_error(await client.get("/api/v1/knowledge/bases/kb_id_1", headers=alice.headers), 404, "NOT_FOUND")
    assert_error(
        await client.delete("/api/v1/knowledge/bases/kb_id_1", headers=alice.headers), 404, "NOT_FOUND"
    )


async def test_a_deleted_knowledge_base_is_gone_and_its_bots_no_longer_use_it(
    client: httpx.AsyncClient, alice: User
) -> None:
    doomed = await create_base(client, alice, **DOCUMENT_KNOWLEDGE_BASE)
    kept = await create_base(client, alice, name="FAQ")
    bot = await client.post(
        "/api/v1/bots/",
        json={"name": "Helpdesk", "knowledge_base_ids": [doomed["id"], kept["id"]]},
        headers=alice.headers,
    )
    assert bot.status_code == 201, bot.text

    response = await client.delete(f"/api/v1/knowledge/bases/{doomed['id']}", headers=alice.headers)

    assert response.status_code == 200
    assert response.json()["success"] is True
    assert_error(
        await client.get(f"/api/v1/knowledge/bases/{doomed['id']}", headers=alice.headers), 404, "NOT_FOUND"
    )
    assert [base["id"] for base in (await list_bases(client, alice))["knowledge_bases"]] == [kept["id"]]
    after = await client.get(f"/api/v1/bots/{bot.json()['id']}", headers=alice.headers)
    assert after.status_code == 200
    assert after.json()["knowledge_base_ids"] == [kept["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"chunk_size": 500, "chunk_overlap": 500}, "chunk_overlap", id="overlap-equal-to-size"),
        pytest.param({"chunk_size": 500, "chunk_overlap": 800}, "chunk_overlap", id="overlap-above-size"),
        pytest.param({"chunk_overlap": -1}, "chunk_overlap", id="overlap-negative"),
        pytest.param({"chunk_size": 0}, "chunk_size", id="size-zero"),
        pytest.param({"vector_store_type": "faiss-in-the-cloud"}, "vector_store_type", id="unknown-store"),
        pytest.param({"chunking_strategy": "by-vibes"}, "chunking_strategy", id="unknown-strategy"),
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"name": "n" * 129}, "name", id="long-name"),
        pytest.param({"metadata": ["not", "an", "object"]}, "metadata", id="metadata-list"),
    ],
)
async def test_invalid_settings_are_refused_naming_the_field_and_nothing_is_stored(
    client: httpx.AsyncClient, alice: User, change: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/api/v1/knowledge/bases", json={**DOCUMENT_KNOWLEDGE_BASE, **change}, headers=alice.headers
    )

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == field
    assert (await list_bases(client, alice))["total"] == 0


async def test_an_overlap_just_below_the_size_is_accepted(client: httpx.AsyncClient, alice: User) -> None:
    base = await create_base(
        client, alice, **{**DOCUMENT_KNOWLEDGE_BASE, "chunk_size": 500, "chunk_overlap": 499}
    )

    assert (base["chunk_size"], base["chunk_overlap"]) == (500, 499)


async def test_an_embedding_model_whose_provider_is_not_configured_is_refused_early(make_client) -> None:
    from tests.faces.chatagent.conftest import sign_up

    client = await make_client()  # no OpenAI key on this server
    alice = await sign_up(client, "alice")
    response = await client.post(
        "/api/v1/knowledge/bases", json=DOCUMENT_KNOWLEDGE_BASE, headers=alice.headers
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["field"] == "embedding_model"
    message = response.json()["error"]["message"]
    assert "TERTULIA_OPENAI_API_KEY" in message and "/api/v1/providers/openai" in message
    unknown = await client.post(
        "/api/v1/knowledge/bases",
        json={"name": "x", "embedding_model": "word2vec-9000"},
        headers=alice.headers,
    )
    assert assert_error(unknown, 400, "VALIDATION_ERROR")["field"] == "embedding_model"
    # Stored as the account's own key, the same model is accepted.
    await client.put(
        "/api/v1/providers/openai",
        json={"api_key": "sk-alice", "base_url": "http://127.0.0.1:9/v1"},
        headers=alice.headers,
    )
    accepted = await client.post(
        "/api/v1/knowledge/bases", json=DOCUMENT_KNOWLEDGE_BASE, headers=alice.headers
    )
    assert accepted.status_code == 201, accepted.text
