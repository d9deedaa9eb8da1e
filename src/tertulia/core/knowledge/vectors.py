"""Where each knowledge base's vectors are searched: the built-in index or Chroma.

The built-in index is in the main database, with the chunks. On a PostgreSQL with pgvector
(store.pgvector; a server finds out once, at start-up) the vectors are searched there with
an HNSW index; otherwise (SQLite, a PostgreSQL without pgvector) the float32 blobs kept with
the chunks are searched in memory (store.index.VectorCache). A base whose `vector_store_type`
is "chroma" also has its vectors in a Chroma collection and is searched there; what Chroma
returns is checked against the database, so only chunks of a document's live generation in
an authorised base ever come back.

Writes to Chroma bracket the database transaction that swaps a document's chunks: the new
vectors go in before it commits, the old ones are removed after. Removals (a document, a
base) go to Chroma first, so a Chroma that cannot be reached refuses the removal instead of
leaving vectors behind.
"""

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import Invalid, Unavailable
from tertulia.store import chroma, pgvector
from tertulia.store.chroma import ChromaRow, ChromaStore, ChromaUnavailable
from tertulia.store.index import Hit, VectorCache, matches
from tertulia.store.tables import Chunk, Document, KnowledgeBase

log = logging.getLogger(__name__)

# Built into the database ("sqlite" and "pgvector" name it on such a server), or a Chroma
# collection.
STORE_TYPES = ("builtin", "sqlite", "pgvector", "chroma")


def uses_chroma(base: KnowledgeBase) -> bool:
    return base.vector_store_type == "chroma"


@asynccontextmanager
async def _reaching_chroma() -> AsyncIterator[None]:
    try:
        yield
    except ChromaUnavailable as error:
        raise Unavailable(str(error), subsystem="store") from error


class VectorIndex:
    def __init__(self, chroma_store: ChromaStore | None, pgvector: bool = False) -> None:
        """`pgvector`: whether the database keeps vectors in pgvector (store.pgvector.present,
        asked once by start_runtime); every process writing chunks must be told the truth."""
        self.builtin = VectorCache()
        self.pgvector = pgvector
        self._chroma = chroma_store

    async def check_store_type(self, store_type: str, dialect: str) -> None:
        """Refuses, naming what to do, a store this server cannot use."""
        if store_type not in STORE_TYPES:
            raise Invalid(
                f"unknown vector store type {store_type!r}",
                {"field": "vector_store_type", "allowed": list(STORE_TYPES)},
            )
        if store_type == "sqlite" and dialect != "sqlite":
            raise Invalid(
                "this server's database is not SQLite: use 'builtin' for its own index",
                {"field": "vector_store_type", "allowed": list(STORE_TYPES)},
            )
        if store_type == "pgvector" and not self.pgvector:
            raise Invalid(
                "the pgvector store needs PostgreSQL with the pgvector extension, which this server's "
                "database has not: use 'builtin' or 'chroma'",
                {"field": "vector_store_type", "allowed": list(STORE_TYPES)},
            )
        if store_type == "chroma" and (self._chroma is None or not chroma.installed()):
            raise Invalid(
                "the chroma store needs the chromadb package on the server: "
                "install tertulia[chroma] (and set TERTULIA_CHROMA_URL to use a Chroma server)",
                {"field": "vector_store_type"},
            )
        if store_type == "chroma":
            assert self._chroma is not None
            async with _reaching_chroma():
                await self._chroma.check()

    @property
    def chroma(self) -> ChromaStore:
        if self._chroma is None:
            raise Invalid("this server has no Chroma vector store configured")
        return self._chroma

    async def search(
        self,
        session: AsyncSession,
        base_ids: Sequence[str],
        query: Sequence[float],
        limit: int,
        filters: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """The `limit` nearest live chunks of these (already authorised) bases."""
        if not base_ids:
            return []
        rows = await session.execute(
            select(KnowledgeBase.id, KnowledgeBase.vector_store_type).where(KnowledgeBase.id.in_(base_ids))
        )
        in_chroma = [base_id for base_id, store_type in rows if store_type == "chroma"]
        builtin = [base_id for base_id in base_ids if base_id not in in_chroma]
        hits = await self._search_builtin(session, builtin, query, limit, filters) if builtin else []
        for base_id in in_chroma:
            hits.extend(await self._search_chroma(session, base_id, query, limit, filters))
        hits.sort(key=lambda hit: -hit.score)
        return hits[:limit]

    async def _search_builtin(
        self,
        session: AsyncSession,
        base_ids: Sequence[str],
        query: Sequence[float],
        limit: int,
        filters: dict[str, Any] | None,
    ) -> list[Hit]:
        if self.pgvector:
            return await pgvector.search(session, base_ids, query, limit, filters)
        return await self.builtin.search(session, base_ids, query, limit, filters)

    async def _search_chroma(
        self,
        session: AsyncSession,
        base_id: str,
        query: Sequence[float],
        limit: int,
        filters: dict[str, Any] | None,
    ) -> list[Hit]:
        # Ask for more than needed: some answers may be stale or fail the full filter.
        async with _reaching_chroma():
            found = await self.chroma.search(base_id, query, limit * (5 if filters else 2), filters)
        if not found:
            return []
        live = dict(
            (
                await session.execute(
                    select(Chunk.id, Chunk.meta)
                    .join(Document, Document.id == Chunk.document_id)
                    .where(
                        Chunk.id.in_([hit.chunk_id for hit in found]),
                        Chunk.knowledge_base_id == base_id,
                        Chunk.generation == Document.generation,
                    )
                )
            ).all()
        )
        kept = [hit for hit in found if hit.chunk_id in live and matches(live[hit.chunk_id], filters or {})]
        return kept[:limit]

    # --- writes: around the database transaction that swaps a document's chunks ---------

    async def write(self, session: AsyncSession, base: KnowledgeBase, rows: Sequence[ChromaRow]) -> None:
        """Before the swap commits: the new generation's vectors (in pgvector, in the same
        transaction; every chunk's, so the table always mirrors `chunks.embedding`)."""
        if self.pgvector:
            await pgvector.write(session, base.id, [(row.chunk_id, row.vector) for row in rows])
        if uses_chroma(base):
            async with _reaching_chroma():
                await self.chroma.write(base.id, rows)

    async def settle(self, base: KnowledgeBase, document_id: str, live_generation: int) -> None:
        """After the swap committed: every other generation's vectors go. Leftovers (Chroma
        failing just now) are invisible to searches and removed by the document's next swap."""
        if not uses_chroma(base):
            return
        try:
            await self.chroma.keep_only(base.id, document_id, live_generation)
        except ChromaUnavailable as error:  # the swap is done; a leftover is harmless
            log.warning("old vectors of document %s stay in Chroma for now: %s", document_id, error)

    async def remove_document(self, base: KnowledgeBase, document_id: str) -> None:
        """Before the document's row goes."""
        if uses_chroma(base):
            async with _reaching_chroma():
                await self.chroma.keep_only(base.id, document_id, None)

    async def remove_base(self, base: KnowledgeBase) -> None:
        """Before the base's row goes."""
        self.builtin.forget(base.id)
        if uses_chroma(base):
            async with _reaching_chroma():
                await self.chroma.drop(base.id)

    async def sweep(self, session: AsyncSession) -> int:
        """Drops collections whose base is gone (its bot or account deleted) from this server's
        own Chroma folder: run at start. A Chroma server may be shared, so it is left alone."""
        if self._chroma is None or not self._chroma.local_and_present or not chroma.installed():
            return 0
        try:
            named = await self._chroma.collections()
        except ChromaUnavailable as error:
            log.warning("could not look for orphan Chroma collections: %s", error)
            return 0
        if not named:
            return 0
        existing = set(await session.scalars(select(KnowledgeBase.id).where(KnowledgeBase.id.in_(named))))
        orphans = [base_id for base_id in named if base_id not in existing]
        for base_id in orphans:
            try:
                await self._chroma.drop(base_id)
            except ChromaUnavailable as error:
                log.warning("could not drop the orphan Chroma collection of %s: %s", base_id, error)
        return len(orphans)

    def close(self) -> None:
        if self._chroma is not None:
            self._chroma.close()
