"""Knowledge vectors in PostgreSQL's pgvector: the `chunk_vectors` table, its HNSW indexes, search.

When it is used: a database has the `chunk_vectors` table only where migrating (`enable`:
migration 0013, and every later `tertulia migrate`, so a pgvector installed afterwards is
taken up) could enable the `vector` extension: a PostgreSQL with pgvector, never SQLite. Each
process looks once, at start-up (`present`, called by runtime.start_runtime), and then writes
and searches there; without the table it uses the numpy index of store.index.

One row per chunk that has a vector. `chunk_vectors.chunk_id` references `chunks.id` with
ON DELETE CASCADE, so whatever removes chunks (a document replaced or deleted, a base, an
account) removes their vectors in the same transaction; new rows are written in the
transaction that adds the chunks (`write`). The float32 blob in `chunks.embedding` stays the
source of truth: retrieval re-reads it, and the numpy path and backfills are built from it.

The column is an untyped `vector`, so one table holds every size; each size gets its own
partial HNSW index over `embedding::vector(N)` with cosine distance (`index_statement`), made
the first time a vector of that size is written. pgvector 0.6 indexes up to 2000 dimensions;
larger vectors are searched exactly, which gives the same answers more slowly.
"""

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import JSON, Connection, Float, Integer, TextualSelect, bindparam, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.store.index import Hit, matches
from tertulia.store.session import Database, is_sqlite

TABLE = "chunk_vectors"
MAX_INDEXED_DIMENSIONS = 2000
# Serialises the first writers of a new vector size, which create its index.
INDEX_LOCK_ID = 7213402
# How many candidates the HNSW graph walk keeps: twice what is asked for, at least 100
# (pgvector's default is 40; 1000 is its maximum), so that its top is nearly always the exact top.
MIN_EF_SEARCH, MAX_EF_SEARCH = 100, 1000
COPY_BATCH = 1000

log = logging.getLogger(__name__)


def enable(connection: Connection) -> bool:
    """Creates `chunk_vectors` where the `vector` extension is available and this user may
    enable it, and copies in the vectors of the chunks already there. Idempotent; run by the
    migrations, on their connection and in their transaction."""
    if connection.dialect.name != "postgresql":
        return False
    if connection.scalar(text(f"SELECT to_regclass('{TABLE}') IS NOT NULL")):
        return True
    if not _vector_extension(connection):
        return False
    connection.execute(
        text(
            f"CREATE TABLE {TABLE} ("
            " chunk_id integer PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,"
            " knowledge_base_id varchar(40) NOT NULL,"
            " dims integer NOT NULL,"
            " embedding vector NOT NULL)"
        )
    )
    connection.execute(text(f"CREATE INDEX {TABLE}_base_dims ON {TABLE} (knowledge_base_id, dims)"))
    for dimensions in sorted(_copy_existing_vectors(connection)):
        if dimensions <= MAX_INDEXED_DIMENSIONS:
            connection.execute(text(index_statement(dimensions)))
    return True


def _vector_extension(connection: Connection) -> bool:
    available = connection.scalar(text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"))
    if not available:
        return False
    try:
        with connection.begin_nested():
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as error:  # installed on the server but not ours to enable: numpy it is
        log.warning("pgvector is installed on this server but could not be enabled: %s", error)
        return False
    return True


def _copy_existing_vectors(connection: Connection) -> set[int]:
    sizes: set[int] = set()
    last_id = 0
    while True:
        rows = connection.execute(
            text(
                "SELECT id, knowledge_base_id, embedding FROM chunks "
                "WHERE embedding IS NOT NULL AND id > :last ORDER BY id LIMIT :batch"
            ),
            {"last": last_id, "batch": COPY_BATCH},
        ).all()
        if not rows:
            return sizes
        values = []
        for row in rows:
            vector = np.frombuffer(row.embedding, dtype="<f4")
            sizes.add(len(vector))
            values.append(
                {
                    "chunk_id": row.id,
                    "base_id": row.knowledge_base_id,
                    "dims": len(vector),
                    "embedding": literal(vector),
                }
            )
        connection.execute(_INSERT, values)
        last_id = rows[-1].id


async def present(database: Database) -> bool:
    """Whether this database keeps knowledge vectors in pgvector (see the module's docstring)."""
    if is_sqlite(database.url):
        return False
    async with database.engine.connect() as connection:
        return bool(await connection.scalar(text(f"SELECT to_regclass('{TABLE}') IS NOT NULL")))


def index_name(dimensions: int) -> str:
    return f"{TABLE}_hnsw_{dimensions}"


def index_statement(dimensions: int) -> str:
    """The HNSW cosine index for vectors of one size; searches use the same expression."""
    size = int(dimensions)
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(size)} ON {TABLE} "
        f"USING hnsw ((embedding::vector({size})) vector_cosine_ops) WHERE dims = {size}"
    )


def literal(vector: Sequence[float] | np.ndarray) -> str:
    """pgvector's text form. A float32 printed as the shortest double that round-trips reads
    back as the same float32, so nothing is lost."""
    return "[" + ",".join(repr(float(value)) for value in np.asarray(vector, dtype="<f4")) + "]"


_INSERT = text(
    f"INSERT INTO {TABLE} (chunk_id, knowledge_base_id, dims, embedding) "
    "VALUES (:chunk_id, :base_id, :dims, CAST(:embedding AS vector))"
)


async def _ensure_index(session: AsyncSession, dimensions: int) -> None:
    if dimensions > MAX_INDEXED_DIMENSIONS:
        return
    name = index_name(dimensions)
    if await session.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}):
        return
    # Held until this transaction commits, so a concurrent first writer waits and then finds it.
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": INDEX_LOCK_ID})
    await session.execute(text(index_statement(dimensions)))


async def write(session: AsyncSession, base_id: str, vectors: Sequence[tuple[int, Sequence[float]]]) -> None:
    """The vectors of newly flushed chunks, as (chunk id, vector), in the caller's transaction."""
    if not vectors:
        return
    for dimensions in sorted({len(vector) for _chunk_id, vector in vectors}):
        await _ensure_index(session, dimensions)
    await session.execute(
        _INSERT,
        [
            {"chunk_id": chunk_id, "base_id": base_id, "dims": len(vector), "embedding": literal(vector)}
            for chunk_id, vector in vectors
        ],
    )


def search_statement(dimensions: int, use_index: bool) -> TextualSelect:
    # The index serves `embedding::vector(N) <=> q` under `dims = N` written as literals; the
    # untyped `embedding <=> q` gives the same distances from an exact scan of the bases' rows.
    size = int(dimensions)
    if use_index:
        distance = f"(v.embedding::vector({size}) <=> CAST(:query AS vector({size})))"
    else:
        distance = "(v.embedding <=> CAST(:query AS vector))"
    return (
        text(
            f"""
            SELECT v.chunk_id, c.metadata AS meta, 1 - {distance} AS score
            FROM {TABLE} AS v
            JOIN chunks AS c ON c.id = v.chunk_id
            JOIN documents AS d ON d.id = c.document_id AND d.generation = c.generation
            WHERE v.dims = {size} AND v.knowledge_base_id IN :bases
            ORDER BY {distance}
            LIMIT :limit
            """
        )
        .bindparams(bindparam("bases", expanding=True))
        .columns(chunk_id=Integer, meta=JSON, score=Float)
    )


async def _nearest(
    session: AsyncSession, base_ids: Sequence[str], query: str, dimensions: int, fetch: int, use_index: bool
) -> list[Any]:
    if use_index:
        await session.execute(
            text("SELECT set_config('hnsw.ef_search', :value, true)"),
            {"value": str(min(MAX_EF_SEARCH, max(MIN_EF_SEARCH, 2 * fetch)))},
        )
    statement = search_statement(dimensions, use_index)
    return list(
        (await session.execute(statement, {"query": query, "bases": list(base_ids), "limit": fetch})).all()
    )


def _score(value: float | None) -> float:
    # A zero vector has no direction: pgvector says NaN where numpy's normalised dot says 0.
    return 0.0 if value is None or value != value else float(value)


async def search(
    session: AsyncSession,
    base_ids: Sequence[str],
    query: Sequence[float],
    limit: int,
    filters: dict[str, Any] | None = None,
) -> list[Hit]:
    """The `limit` nearest live chunks of these bases by cosine similarity, as store.index does.

    The HNSW walk first; it finds its candidates before the base and live-generation filters
    apply, so when it comes back short the same query runs again as an exact scan of the
    bases' rows, which is also what a small base gets from the planner anyway."""
    if not base_ids or limit <= 0:
        return []
    dimensions = len(query)
    wanted = literal(query)
    # Metadata filters are applied to what the index ranked, so ask for more when filtering.
    fetch = limit * 5 if filters else limit
    use_index = dimensions <= MAX_INDEXED_DIMENSIONS
    while True:
        rows = await _nearest(session, base_ids, wanted, dimensions, fetch, use_index)
        hits = [
            Hit(row.chunk_id, _score(row.score)) for row in rows if not filters or matches(row.meta, filters)
        ]
        if len(hits) >= limit:
            return hits[:limit]
        if use_index:
            use_index = False  # maybe short because of the filters: look at every row
        elif len(rows) < fetch:
            return hits  # every row of the bases was seen
        else:
            fetch *= 4
