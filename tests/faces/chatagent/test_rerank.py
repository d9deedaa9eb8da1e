"""Reranking with the server's own cross-encoder (TERTULIA_RERANK_MODEL_PATH): offered in the
model catalog, asked for by a search, and used by every bot by default."""

from pathlib import Path

import httpx
import pytest

from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_documents import finished, new_base, search, upload
from tests.faces.chatagent.test_errors import assert_error
from tests.providers import cross_encoder

DOCUMENTS = {
    "garden.txt": "The garden gate is green and opens at dawn.",
    "door.txt": "The red door of the depot is locked with code 5521.",
    "window.txt": "The blue window of the office faces the river.",
    "car.txt": "The delivery car is red and parked behind the depot.",
}
QUESTION = "What is the code of the red door of the depot?"


@pytest.fixture
async def client(make_client, tmp_path: Path) -> httpx.AsyncClient:
    words = " ".join([QUESTION, *DOCUMENTS.values()]).replace("?", " ").replace(".", " ").split()
    model = cross_encoder.build(tmp_path / "overlap-reranker", words)
    return await make_client(rerank_model_path=model)


async def filled_base(client: httpx.AsyncClient, user: User) -> str:
    base_id = await new_base(client, user)
    for name, content in DOCUMENTS.items():
        job = await finished(client, user, (await upload(client, user, base_id, name, content))["job"]["id"])
        assert job["status"] == "done", job["error"]
    return base_id


async def test_the_catalog_offers_the_servers_rerank_model(client: httpx.AsyncClient, alice: User) -> None:
    listed = (await client.get("/api/v1/models", headers=alice.headers)).json()
    assert {"provider": "local", "model": "overlap-reranker", "task_type": "rerank"} in listed["local"]


async def test_a_search_reranked_by_the_model_is_ordered_and_scored_by_it(client, alice) -> None:
    base_id = await filled_base(client, alice)
    rerank = {"provider": "local", "model": "overlap-reranker"}

    results = await search(client, alice, base_id, QUESTION, top_k=4, rerank=rerank)

    assert len(results) == 4
    expected = [cross_encoder.probability(QUESTION, hit["content"]) for hit in results]
    assert [hit["score"] for hit in results] == pytest.approx(expected, abs=1e-5)
    assert expected == sorted(expected, reverse=True)
    assert results[0]["metadata"]["source"] == "door.txt"
    assert all(0.0 < hit["metadata"]["similarity"] <= 1.0 for hit in results)


async def test_an_unknown_local_rerank_model_is_a_clear_error(client, alice) -> None:
    base_id = await filled_base(client, alice)
    response = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/search",
        headers=alice.headers,
        json={"query": QUESTION, "rerank": {"provider": "local", "model": "no-such-model"}},
    )
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "TERTULIA_RERANK_MODEL_PATH" in response.json()["error"]["message"]


async def test_a_bots_sources_are_reranked_by_the_servers_model(client, alice) -> None:
    base_id = await filled_base(client, alice)
    bot = await client.post(
        "/api/v1/bots/",
        headers=alice.headers,
        json={"name": "Depot", "knowledge_base_ids": [base_id], "llm_config": {"max_tokens": 8}},
    )
    conversation = await client.post(
        "/api/v1/conversations/", headers=alice.headers, json={"bot_id": bot.json()["id"]}
    )
    response = await client.post(
        f"/api/v1/conversations/{conversation.json()['id']}/messages",
        headers=alice.headers,
        json={"content": QUESTION},
    )
    assert response.status_code == 200, response.text
    sources = response.json()["bot_response"]["metadata"]["sources"]
    assert sources and sources[0]["document_name"] == "door.txt"
    for source in sources:
        assert source["score"] == pytest.approx(
            cross_encoder.probability(QUESTION, source["content"]), abs=1e-5
        )


async def test_without_a_configured_model_nothing_is_offered(make_client) -> None:
    client = await make_client()
    alice = await sign_up(client, "alice")
    listed = (await client.get("/api/v1/models", headers=alice.headers)).json()
    assert not [model for model in listed["local"] if model["task_type"] == "rerank"]
