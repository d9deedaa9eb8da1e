"""Knowledge bases whose vectors live in Chroma: a persistent local folder, and a real Chroma
server (`chroma run`, started here on a free port). What is searched, replaced and deleted
is checked in Chroma itself."""

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import chromadb
import httpx
import pytest
from chromadb.config import Settings as ChromaSettings
from sqlalchemy import func, select

from tertulia.store import pgvector
from tertulia.store.chroma import close_client
from tertulia.store.session import Database
from tertulia.store.tables import Chunk
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_documents import finished, new_base, search, upload
from tests.faces.chatagent.test_errors import assert_error
from tests.faces.chatagent.test_knowledge import DOCUMENT_KNOWLEDGE_BASE
from tests.providers.standins import API_KEY, StandIn

CHROMA_SETTINGS = ChromaSettings(anonymized_telemetry=False)


def local_ids(folder: Path, base_id: str) -> list[str] | None:
    """The ids in a base's collection in this Chroma folder; None when there is no collection."""
    client = chromadb.PersistentClient(path=str(folder), settings=CHROMA_SETTINGS)
    try:
        names = [collection.name for collection in client.list_collections()]
        if f"tertulia-{base_id}" not in names:
            return None
        return list(client.get_collection(f"tertulia-{base_id}").get(include=[])["ids"])
    finally:
        client.close()


async def chunk_ids(database: Database, base_id: str) -> list[str]:
    async with database.session() as session:
        rows = await session.scalars(select(Chunk.id).where(Chunk.knowledge_base_id == base_id))
        return sorted(str(chunk_id) for chunk_id in rows)


async def ingest(client: httpx.AsyncClient, user: User, base_id: str, name: str, content: str, **meta: Any):
    accepted = await upload(client, user, base_id, name, content, **meta)
    job = await finished(client, user, accepted["job"]["id"])
    assert job["status"] == "done", job["error"]
    return accepted


async def test_the_document_example_keeps_its_vectors_in_chroma_and_searches_there(
    make_client, standin: StandIn, tmp_path: Path, database: Database
) -> None:
    client = await make_client(openai_api_key=API_KEY, openai_base_url=standin.url + "/v1")
    alice = await sign_up(client, "alice")
    response = await client.post(
        "/api/v1/knowledge/bases", json=DOCUMENT_KNOWLEDGE_BASE, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    base_id = response.json()["id"]
    texts = ["产品A支持离线安装。", "产品B每月更新一次。"]
    for position, content in enumerate(texts):
        await ingest(client, alice, base_id, f"doc{position}.txt", content)

    ids = await anyio.to_thread.run_sync(local_ids, tmp_path / "chroma", base_id)
    assert sorted(ids or []) == await chunk_ids(database, base_id)
    # The stand-in's vectors are equal for equal texts: a vector search for a chunk's own
    # text finds it first, with a cosine of 1, through Chroma.
    [hit, *_] = await search(client, alice, base_id, texts[1], mode="vector", top_k=2)
    assert hit["content"] == texts[1] and hit["score"] == pytest.approx(1.0, abs=1e-4)


async def test_replacing_and_deleting_keep_chroma_in_step(
    client: httpx.AsyncClient, alice: User, tmp_path: Path, database: Database
) -> None:
    folder = tmp_path / "chroma"
    base_id = await new_base(client, alice, vector_store_type="chroma")
    first = await ingest(client, alice, base_id, "notes.txt", "The launch code is amber falcon.")
    await ingest(client, alice, base_id, "other.txt", "Lunch is served at noon in the garden.")
    await ingest(client, alice, base_id, "notes.txt", "The launch code is violet heron.")

    assert sorted(await anyio.to_thread.run_sync(local_ids, folder, base_id) or []) == await chunk_ids(
        database, base_id
    )
    [hit, *_] = await search(client, alice, base_id, "What is the launch code?", mode="vector")
    assert "violet heron" in hit["content"]

    deleted = await client.delete(
        f"/api/v1/knowledge/bases/{base_id}/documents/{first['id']}", headers=alice.headers
    )
    assert deleted.status_code == 200
    remaining = await anyio.to_thread.run_sync(local_ids, folder, base_id)
    assert remaining is not None and sorted(remaining) == await chunk_ids(database, base_id)
    assert all("launch" not in hit["content"] for hit in await search(client, alice, base_id, "launch code"))

    assert (
        await client.delete(f"/api/v1/knowledge/bases/{base_id}", headers=alice.headers)
    ).status_code == 200
    assert await anyio.to_thread.run_sync(local_ids, folder, base_id) is None
    async with database.session() as session:
        assert await session.scalar(select(func.count(Chunk.id))) == 0


async def test_filters_apply_and_a_vector_chroma_holds_for_no_live_chunk_is_never_returned(
    client: httpx.AsyncClient, alice: User, tmp_path: Path
) -> None:
    base_id = await new_base(client, alice, vector_store_type="chroma")
    for name, category in (("a.txt", "billing"), ("b.txt", "setup")):
        await ingest(
            client, alice, base_id, name, f"Tertulia {category} guide, all in one page.", category=category
        )
    only = await search(
        client, alice, base_id, "Tertulia guide", mode="vector", filters={"category": "setup"}
    )
    assert [hit["metadata"]["source"] for hit in only] == ["b.txt"]

    # A vector left in Chroma by a swap that never committed: identical to the query's, yet
    # no live chunk has its id, so it is not an answer.
    def plant() -> None:
        chroma = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=CHROMA_SETTINGS)
        try:
            collection = chroma.get_collection(f"tertulia-{base_id}")
            [vector] = collection.get(include=["embeddings"], limit=1)["embeddings"]
            collection.upsert(ids=["987654321"], embeddings=[vector], metadatas=[{"category": "setup"}])
        finally:
            chroma.close()

    await anyio.to_thread.run_sync(plant)
    results = await search(client, alice, base_id, "Tertulia guide", mode="vector", top_k=10)
    assert sorted(hit["metadata"]["source"] for hit in results) == ["a.txt", "b.txt"]


async def test_another_account_cannot_search_a_chroma_base(client: httpx.AsyncClient, alice, bob) -> None:
    base_id = await new_base(client, alice, vector_store_type="chroma")
    await ingest(client, alice, base_id, "secret.txt", "The vault opens with the word marzipan.")
    response = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/search", headers=bob.headers, json={"query": "vault word"}
    )
    assert_error(response, 404, "NOT_FOUND")


# --- a Chroma server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ChromaServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: anyio.abc.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        binary = Path(sys.executable).parent / "chroma"
        self.process = await anyio.open_process(
            [str(binary), "run", "--path", str(self.folder), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(self.url + "/api/v2/heartbeat")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("the Chroma server did not start")

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            with anyio.fail_after(10):
                await self.process.wait()
            await self.process.aclose()
            self.process = None


@pytest.fixture
async def chroma_server(tmp_path: Path) -> AsyncIterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-server")
    await server.start()
    yield server
    await server.stop()


def server_ids(url: str, base_id: str) -> list[str]:
    port = int(url.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=CHROMA_SETTINGS)
    try:
        return list(client.get_collection(f"tertulia-{base_id}").get(include=[])["ids"])
    finally:
        close_client(client)


async def test_a_chroma_server_serves_the_base_and_its_outage_is_a_clear_503_that_loses_nothing(
    make_client, chroma_server: ChromaServer, database: Database
) -> None:
    client = await make_client(chroma_url=chroma_server.url, chroma_timeout_seconds=5)
    alice = await sign_up(client, "alice")
    base_id = await new_base(client, alice, vector_store_type="chroma")
    accepted = await ingest(client, alice, base_id, "faq.txt", "Refunds are paid within 14 days of a return.")
    assert sorted(await anyio.to_thread.run_sync(server_ids, chroma_server.url, base_id)) == await chunk_ids(
        database, base_id
    )
    [hit] = await search(client, alice, base_id, "How long do refunds take?", mode="vector", top_k=1)
    assert "14 days" in hit["content"]

    await chroma_server.stop()
    down = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/search", headers=alice.headers, json={"query": "refunds"}
    )
    assert_error(down, 503, "SERVICE_UNAVAILABLE")
    assert "Chroma" in down.json()["error"]["message"]
    refused = await client.delete(
        f"/api/v1/knowledge/bases/{base_id}/documents/{accepted['id']}", headers=alice.headers
    )
    assert_error(refused, 503, "SERVICE_UNAVAILABLE")
    assert await chunk_ids(database, base_id)  # nothing was removed

    await chroma_server.start()  # the same folder and port: the vectors are still there
    [again] = await search(client, alice, base_id, "How long do refunds take?", mode="vector", top_k=1)
    assert again["content"] == hit["content"]


async def test_a_chroma_server_that_cannot_be_reached_refuses_new_chroma_bases(make_client) -> None:
    client = await make_client(chroma_url=f"http://127.0.0.1:{free_port()}", chroma_timeout_seconds=5)
    alice = await sign_up(client, "alice")
    response = await client.post(
        "/api/v1/knowledge/bases",
        headers=alice.headers,
        json={"name": "Remote", "vector_store_type": "chroma"},
    )
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "Chroma" in response.json()["error"]["message"]
    listed = await client.get("/api/v1/knowledge/bases", headers=alice.headers)
    assert listed.json()["total"] == 0


async def test_stores_this_server_cannot_use_are_refused_naming_the_choices(
    client: httpx.AsyncClient, alice: User, database: Database
) -> None:
    on_sqlite = database.url.startswith("sqlite")
    with_pgvector = await pgvector.present(database)
    for store, accepted in (("pgvector", with_pgvector), ("sqlite", on_sqlite), ("builtin", True)):
        response = await client.post(
            "/api/v1/knowledge/bases", headers=alice.headers, json={"name": store, "vector_store_type": store}
        )
        if accepted:
            assert response.status_code == 201, response.text
        else:
            details = assert_error(response, 400, "VALIDATION_ERROR")
            assert details["field"] == "vector_store_type" and "chroma" in details["allowed"]
