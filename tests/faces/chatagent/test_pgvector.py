"""Knowledge bases on a PostgreSQL with pgvector, through the ChatAgent face: `vector_store_type`
"pgvector" is accepted, and what is searched, replaced and deleted is checked in pgvector itself.

These need PostgreSQL with pgvector (TERTULIA_TEST_POSTGRES_URL=pgserver starts one)."""

import httpx
import pytest
from sqlalchemy import select, text

from tertulia.store import pgvector
from tertulia.store.session import Database
from tertulia.store.tables import Chunk
from tests.faces.chatagent.conftest import User
from tests.faces.chatagent.test_chroma import ingest
from tests.faces.chatagent.test_documents import new_base, search
from tests.faces.chatagent.test_errors import assert_error


@pytest.fixture(autouse=True)
async def needs_pgvector(database: Database) -> None:
    if not await pgvector.present(database):
        pytest.skip("needs PostgreSQL with pgvector (TERTULIA_TEST_POSTGRES_URL=pgserver starts one)")


async def ids_in_pgvector(database: Database, base_id: str) -> list[int]:
    async with database.session() as session:
        rows = await session.scalars(
            text("SELECT chunk_id FROM chunk_vectors WHERE knowledge_base_id = :base ORDER BY chunk_id"),
            {"base": base_id},
        )
        return list(rows)


async def ids_in_chunks(database: Database, base_id: str) -> list[int]:
    async with database.session() as session:
        rows = await session.scalars(
            select(Chunk.id).where(Chunk.knowledge_base_id == base_id).order_by(Chunk.id)
        )
        return list(rows)


@pytest.mark.parametrize("store", ["pgvector", "builtin"])
async def test_replacing_and_deleting_keep_pgvector_in_step(
    client: httpx.AsyncClient, alice: User, database: Database, store: str
) -> None:
    base_id = await new_base(client, alice, vector_store_type=store)
    first = await ingest(client, alice, base_id, "notes.txt", "The launch code is amber falcon.")
    await ingest(client, alice, base_id, "other.txt", "Lunch is served at noon in the garden.")
    await ingest(client, alice, base_id, "notes.txt", "The launch code is violet heron.")

    assert await ids_in_pgvector(database, base_id) == await ids_in_chunks(database, base_id) != []
    [hit, *_] = await search(client, alice, base_id, "What is the launch code?", mode="vector")
    assert "violet heron" in hit["content"]
    assert all("amber" not in hit["content"] for hit in await search(client, alice, base_id, "launch code"))

    deleted = await client.delete(
        f"/api/v1/knowledge/bases/{base_id}/documents/{first['id']}", headers=alice.headers
    )
    assert deleted.status_code == 200
    assert await ids_in_pgvector(database, base_id) == await ids_in_chunks(database, base_id) != []
    assert all("launch" not in hit["content"] for hit in await search(client, alice, base_id, "launch code"))

    removed = await client.delete(f"/api/v1/knowledge/bases/{base_id}", headers=alice.headers)
    assert removed.status_code == 200
    assert await ids_in_pgvector(database, base_id) == []


async def test_another_account_neither_searches_nor_is_found_in_a_pgvector_base(
    client: httpx.AsyncClient, alice: User, bob: User
) -> None:
    alices = await new_base(client, alice, vector_store_type="pgvector")
    bobs = await new_base(client, bob, vector_store_type="pgvector")
    await ingest(client, alice, alices, "secret.txt", "The vault opens with the word marzipan.")
    bobs_documents = {
        (await ingest(client, bob, bobs, "secret.txt", "The vault opens with the word marzipan."))["id"],
        (await ingest(client, bob, bobs, "other.txt", "Bob's vault opens on Tuesdays."))["id"],
    }

    response = await client.post(
        f"/api/v1/knowledge/bases/{alices}/search", headers=bob.headers, json={"query": "vault word"}
    )
    assert_error(response, 404, "NOT_FOUND")
    hits = await search(client, bob, bobs, "The vault opens with the word marzipan.", mode="vector", top_k=10)
    # Alice's chunk is as near as Bob's own, yet only Bob's two documents answer.
    assert len(hits) == 2 and {hit["document_id"] for hit in hits} == bobs_documents
