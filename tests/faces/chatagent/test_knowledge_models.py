"""Knowledge with remote models: a base embedded by an OpenAI-compatible server, and search
reranked by a rerank server (the /rerank request llama.cpp, vLLM, Jina and Cohere share),
both local stand-ins speaking those protocols."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.faces.chatagent.test_documents import finished, search
from tests.providers.standins import API_KEY, StandIn, serving


class RerankServer:
    """POST /v1/rerank: scores each document by the share of the query's words it holds."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        self.received.append(request)
        words = set(request["query"].lower().split())
        results = [
            {"index": index, "relevance_score": len(words & set(document.lower().split())) / len(words)}
            for index, document in enumerate(request["documents"])
        ]
        payload = json.dumps({"model": request["model"], "results": results}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def rerank_server() -> Iterator[RerankServer]:
    app = RerankServer()
    with serving(app):  # type: ignore[arg-type]
        yield app


async def test_a_base_embedded_by_a_remote_model_once_it_is_configured(
    client, alice, standin: StandIn
) -> None:
    body = {"name": "Remote", "embedding_model": "openai-compatible/embedder-standin"}
    refused = await client.post("/api/v1/knowledge/bases", headers=alice.headers, json=body)
    assert refused.status_code == 400 and "openai-compatible" in refused.json()["error"]["message"]

    await client.put(
        "/api/v1/providers/openai-compatible",
        headers=alice.headers,
        json={"api_key": API_KEY, "base_url": standin.url + "/v1"},
    )
    created = await client.post("/api/v1/knowledge/bases", headers=alice.headers, json=body)
    assert created.status_code == 201, created.text
    base_id = created.json()["id"]
    text = "Remote embeddings keep the harbour schedule: ferries leave at 6:15."
    accepted = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents/text",
        headers=alice.headers,
        json={"name": "harbour", "content": text},
    )
    job = await finished(client, alice, accepted.json()["job"]["id"])
    assert job["status"] == "done", job
    embedded = [request for request in standin.received if request.path == "/v1/embeddings"]
    assert embedded and embedded[0].body["model"] == "embedder-standin" and text in embedded[0].body["input"]
    # The stand-in embeds equal texts equally: the chunk's own text is its nearest neighbour.
    [hit] = await search(client, alice, base_id, text, mode="vector", top_k=1)
    assert hit["content"] == text and hit["score"] == pytest.approx(1.0, abs=1e-5)


async def test_search_reranked_by_a_rerank_server(client, alice, rerank_server: RerankServer) -> None:
    await client.put(
        "/api/v1/providers/openai-compatible",
        headers=alice.headers,
        json={"base_url": rerank_server.url + "/v1"},
    )
    base = await client.post("/api/v1/knowledge/bases", headers=alice.headers, json={"name": "Plants"})
    base_id = base.json()["id"]
    notes = {
        "ferns": "Ferns like shade and damp soil.",
        "cacti": "Cacti want sun, sand and little water.",
        "orchids": "Orchids want bright indirect light and little water in winter.",
    }
    for name, content in notes.items():
        accepted = await client.post(
            f"/api/v1/knowledge/bases/{base_id}/documents/text",
            headers=alice.headers,
            json={"name": name, "content": content},
        )
        await finished(client, alice, accepted.json()["job"]["id"])
    query = "which plants want little water in winter"
    reranked = await search(
        client, alice, base_id, query, top_k=2, rerank={"provider": "openai-compatible", "model": "rr-1"}
    )
    assert [hit["metadata"]["source"] for hit in reranked] == ["orchids", "cacti"]
    assert reranked[0]["score"] == pytest.approx(4 / 7)  # the rerank score; the similarity is kept aside
    assert 0 < reranked[0]["metadata"]["similarity"] < 1
    [request] = rerank_server.received[-1:]
    assert request["model"] == "rr-1" and request["query"] == query and len(request["documents"]) == 3


async def test_a_base_can_pick_the_faster_local_english_embedder(client, alice, database) -> None:
    from sqlalchemy import func, select

    from tertulia.store.tables import Chunk

    listed = (await client.get("/api/v1/models", headers=alice.headers)).json()
    assert {"provider": "local", "model": "all-minilm-l6-v2", "task_type": "embedding"} in listed["local"]
    created = await client.post(
        "/api/v1/knowledge/bases",
        headers=alice.headers,
        json={"name": "English", "embedding_model": "all-minilm-l6-v2", "chunk_size": 1000},
    )
    assert created.status_code == 201, created.text
    base_id = created.json()["id"]
    paragraphs = [
        f"Section {n}. The ferry to island {n} leaves the harbour at {n}:15 every day." for n in range(60)
    ]
    accepted = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents/text",
        headers=alice.headers,
        json={"name": "timetable", "content": "\n\n".join(paragraphs)},
    )
    job = await finished(client, alice, accepted.json()["job"]["id"])
    assert job["status"] == "done", job["error"]
    async with database.session() as session:
        # chunk_size 1000 is capped at the 256 tokens the model reads
        assert 1 < await session.scalar(select(func.count(Chunk.id))) <= 60
        assert await session.scalar(select(func.max(Chunk.tokens))) <= 256

    [hit] = await search(
        client, alice, base_id, "When does the ferry to island 42 leave?", mode="vector", top_k=1
    )
    assert "island 42 leaves the harbour at 42:15" in hit["content"]
    document = await client.get(
        f"/api/v1/knowledge/bases/{base_id}/documents/{accepted.json()['id']}", headers=alice.headers
    )
    assert document.json()["metadata"]["embedding_model"] == "all-minilm-l6-v2"
