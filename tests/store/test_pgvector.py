"""Knowledge vectors in pgvector: searched there with the HNSW index, ranked as the numpy index
ranks them, kept in step with the chunks, and never crossing from one base or account to another.

These need PostgreSQL with pgvector (TERTULIA_TEST_POSTGRES_URL=pgserver starts one)."""

from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Connection, bindparam, delete, func, select, text

from tertulia.core.accounts import NewAccount, register
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.store import pgvector
from tertulia.store.chroma import ChromaRow
from tertulia.store.index import Hit, VectorCache, pack
from tertulia.store.migrate import alembic_config, migrate
from tertulia.store.session import Database
from tertulia.store.tables import Chunk, Document, KnowledgeBase


@pytest.fixture
async def vectors_db(database: Database) -> AsyncIterator[Database]:
    if not await pgvector.present(database):
        pytest.skip("needs PostgreSQL with pgvector (TERTULIA_TEST_POSTGRES_URL=pgserver starts one)")
    yield database


async def new_account(database: Database, name: str) -> str:
    async with database.session() as session:
        account = await register(session, NewAccount(f"{name}@example.com", None))
        return account.id


async def new_base(database: Database, account_id: str, name: str = "Manuals") -> str:
    async with database.session() as session:
        base = KnowledgeBase(account_id=account_id, name=name)
        session.add(base)
        await session.commit()
        return base.id


async def put_document(
    database: Database,
    base_id: str,
    name: str,
    vectors: Sequence[Sequence[float]],
    metadata: Sequence[dict[str, Any]] | None = None,
) -> dict[int, int]:
    """Writes (or replaces) a document's chunks as ingestion does: the new generation and its
    vectors in one transaction with the old generation's removal. Chunk id → row in `vectors`."""
    index = VectorIndex(None, pgvector=True)
    async with database.session() as session:
        base = await session.get(KnowledgeBase, base_id)
        assert base is not None
        document = await session.scalar(
            select(Document).where(Document.knowledge_base_id == base_id, Document.name == name)
        )
        if document is None:
            document = Document(
                account_id=base.account_id, knowledge_base_id=base_id, name=name, source_type="text"
            )
            session.add(document)
            await session.flush()
        live = document.generation + 1
        rows = [
            Chunk(
                account_id=base.account_id,
                knowledge_base_id=base_id,
                document_id=document.id,
                generation=live,
                position=position,
                text=f"{name} {position}",
                search_text=f"{name} {position}",
                meta=(metadata[position] if metadata else {}),
                embedding=pack(vector),
            )
            for position, vector in enumerate(vectors)
        ]
        session.add_all(rows)
        await session.flush()
        await index.write(
            session,
            base,
            [
                ChromaRow(row.id, vector, document.id, live, row.meta)
                for row, vector in zip(rows, vectors, strict=True)
            ],
        )
        await session.execute(delete(Chunk).where(Chunk.document_id == document.id, Chunk.generation != live))
        document.generation, document.status = live, "ready"
        base.index_version += 1
        await session.commit()
        return {row.id: position for position, row in enumerate(rows)}


async def vector_rows(database: Database) -> dict[int, np.ndarray]:
    """What pgvector holds: chunk id → vector."""
    async with database.session() as session:
        rows = await session.execute(text("SELECT chunk_id, embedding::text AS vector FROM chunk_vectors"))
        return {row.chunk_id: np.array(row.vector.strip("[]").split(","), dtype="<f4") for row in rows}


async def assert_pgvector_mirrors_the_chunks(database: Database) -> None:
    """Every chunk's vector, exactly, and nothing else."""
    async with database.session() as session:
        rows = await session.execute(select(Chunk.id, Chunk.embedding).where(Chunk.embedding.is_not(None)))
        in_chunks = {row.id: np.frombuffer(row.embedding, dtype="<f4") for row in rows}
    in_pgvector = await vector_rows(database)
    assert sorted(in_pgvector) == sorted(in_chunks)
    assert all(np.array_equal(in_pgvector[chunk_id], in_chunks[chunk_id]) for chunk_id in in_chunks)


async def both_searches(
    database: Database,
    base_ids: list[str],
    query: np.ndarray,
    limit: int,
    filters: dict[str, Any] | None = None,
) -> tuple[list[Hit], list[Hit]]:
    async with database.session() as session:
        in_pgvector = await pgvector.search(session, base_ids, query.tolist(), limit, filters)
        in_memory = await VectorCache().search(session, base_ids, query.tolist(), limit, filters)
    return in_pgvector, in_memory


def random_vectors(generator: np.random.Generator, count: int, dimensions: int) -> np.ndarray:
    return generator.standard_normal((count, dimensions)).astype("<f4")


async def test_a_large_base_is_searched_through_its_hnsw_index(vectors_db: Database) -> None:
    generator = np.random.default_rng(7)
    base_id = await new_base(vectors_db, await new_account(vectors_db, "owner"))
    await put_document(vectors_db, base_id, "big", random_vectors(generator, 3000, 24).tolist())
    await assert_pgvector_mirrors_the_chunks(vectors_db)

    async with vectors_db.session() as session:
        await session.execute(text("ANALYZE"))
        searched = pgvector.search_statement(24, use_index=True).element.text
        statement = text(f"EXPLAIN {searched}").bindparams(bindparam("bases", expanding=True))
        query = pgvector.literal(random_vectors(generator, 1, 24)[0])
        plan = "\n".join(
            (await session.execute(statement, {"query": query, "bases": [base_id], "limit": 10})).scalars()
        )
    assert pgvector.index_name(24) in plan, plan

    # Approximate, as HNSW is, yet nearly always the exact top ten, with the same scores.
    found = exact = 0
    for query in random_vectors(generator, 10, 24):
        in_pgvector, in_memory = await both_searches(vectors_db, [base_id], query, 10)
        scores = {hit.chunk_id: hit.score for hit in in_memory}
        found += len(scores.keys() & {hit.chunk_id for hit in in_pgvector})
        exact += 10
        assert all(
            hit.score == pytest.approx(scores.get(hit.chunk_id, hit.score), abs=1e-5) for hit in in_pgvector
        )
        assert [hit.score for hit in in_pgvector] == sorted((hit.score for hit in in_pgvector), reverse=True)
    assert found / exact >= 0.95


async def test_pgvector_ranks_as_the_numpy_index_does(vectors_db: Database) -> None:
    generator = np.random.default_rng(11)
    owner = await new_account(vectors_db, "owner")
    first, second = await new_base(vectors_db, owner, "First"), await new_base(vectors_db, owner, "Second")
    topics = [{"topic": "billing"}, {"topic": "setup"}, {"topic": "security"}]
    await put_document(
        vectors_db,
        first,
        "a",
        random_vectors(generator, 400, 16).tolist(),
        [topics[i % 3] for i in range(400)],
    )
    await put_document(vectors_db, second, "b", random_vectors(generator, 300, 16).tolist())

    for query in random_vectors(generator, 5, 16):
        for bases, filters in (([first], None), ([first, second], None), ([first], {"topic": "setup"})):
            in_pgvector, in_memory = await both_searches(vectors_db, bases, query, 10, filters)
            assert [hit.chunk_id for hit in in_pgvector] == [hit.chunk_id for hit in in_memory]
            assert [hit.score for hit in in_pgvector] == pytest.approx(
                [hit.score for hit in in_memory], abs=1e-5
            )


async def test_a_filter_rarer_than_the_candidates_still_finds_its_chunks(vectors_db: Database) -> None:
    generator = np.random.default_rng(5)
    base_id = await new_base(vectors_db, await new_account(vectors_db, "owner"))
    # Two chunks of 2000 carry the tag: far fewer than the index's candidates.
    tags = [{"tag": "rare"} if position in (17, 1500) else {} for position in range(2000)]
    await put_document(vectors_db, base_id, "big", random_vectors(generator, 2000, 24).tolist(), tags)
    query = random_vectors(generator, 1, 24)[0]
    in_pgvector, in_memory = await both_searches(vectors_db, [base_id], query, 5, {"tag": "rare"})
    assert len(in_pgvector) == 2
    assert [hit.chunk_id for hit in in_pgvector] == [hit.chunk_id for hit in in_memory]


async def test_replacing_and_deleting_documents_leaves_no_stale_vectors(vectors_db: Database) -> None:
    generator = np.random.default_rng(3)
    base_id = await new_base(vectors_db, await new_account(vectors_db, "owner"))
    old = random_vectors(generator, 5, 8)
    await put_document(vectors_db, base_id, "notes", old.tolist())
    await put_document(vectors_db, base_id, "other", random_vectors(generator, 3, 8).tolist())
    new = await put_document(vectors_db, base_id, "notes", random_vectors(generator, 4, 8).tolist())

    await assert_pgvector_mirrors_the_chunks(vectors_db)
    assert len(await vector_rows(vectors_db)) == 7
    async with vectors_db.session() as session:
        # The replaced version's own vector no longer finds itself.
        hits = await pgvector.search(session, [base_id], old[0].tolist(), 10)
    assert {hit.chunk_id for hit in hits} <= set(await vector_rows(vectors_db))
    assert all(hit.score < 0.9999 for hit in hits)

    async with vectors_db.session() as session:
        document = await session.scalar(select(Document).where(Document.name == "notes"))
        await session.delete(document)
        await session.commit()
    remaining = await vector_rows(vectors_db)
    assert len(remaining) == 3 and not set(new) & set(remaining)

    async with vectors_db.session() as session:
        await session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == base_id))
        await session.commit()
        assert await session.scalar(text("SELECT count(*) FROM chunk_vectors")) == 0
        assert await session.scalar(select(func.count(Chunk.id))) == 0


async def test_another_bases_or_accounts_chunks_never_come_back(vectors_db: Database) -> None:
    generator = np.random.default_rng(9)
    alice, bob = await new_account(vectors_db, "alice"), await new_account(vectors_db, "bob")
    alices, alices_other, bobs = (
        await new_base(vectors_db, alice),
        await new_base(vectors_db, alice, "Other"),
        await new_base(vectors_db, bob),
    )
    query = random_vectors(generator, 1, 12)[0]
    # The others hold the query's own vector, the nearest there can be.
    await put_document(vectors_db, alices_other, "same", [query.tolist()])
    await put_document(vectors_db, bobs, "same", [query.tolist()] * 3)
    mine = await put_document(vectors_db, alices, "mine", random_vectors(generator, 50, 12).tolist())

    async with vectors_db.session() as session:
        hits = await pgvector.search(session, [alices], query.tolist(), 20)
        assert len(hits) == 20 and {hit.chunk_id for hit in hits} <= set(mine)
        assert await pgvector.search(session, [], query.tolist(), 20) == []
        [best, *_] = await pgvector.search(session, [bobs], query.tolist(), 5)
        assert best.score == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("applied", ["0012", "0013"])
async def test_migrating_onto_pgvector_copies_the_vectors_already_there(
    vectors_db: Database, applied: str
) -> None:
    """From before 0013, or from a 0013 that ran while the server had no pgvector."""
    base_id = await new_base(vectors_db, await new_account(vectors_db, "owner"))
    await put_document(vectors_db, base_id, "flat", [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.6, 0.8, 0.0]])

    def without_pgvector(connection: Connection) -> None:
        config = alembic_config(vectors_db.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")
        command.stamp(config, applied)

    async with vectors_db.engine.begin() as connection:
        await connection.run_sync(without_pgvector)
    assert not await pgvector.present(vectors_db)
    await migrate(vectors_db)

    assert await pgvector.present(vectors_db)
    await assert_pgvector_mirrors_the_chunks(vectors_db)
    async with vectors_db.session() as session:
        hits = await pgvector.search(session, [base_id], [1.0, 0.0, 0.0], 5)
        in_memory = await VectorCache().search(session, [base_id], [1.0, 0.0, 0.0], 5)
    # A zero vector has no direction: both indexes score it 0.
    assert [hit.score for hit in hits] == pytest.approx([1.0, 0.6, 0.0], abs=1e-6)
    assert [hit.chunk_id for hit in hits] == [hit.chunk_id for hit in in_memory]
