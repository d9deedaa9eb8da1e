"""The knowledge index: chunks' vectors and full text, searched per knowledge base.

Both legs live in the main database, so a chunk, its vector and its words are written and
removed in one transaction with the document that owns them:

- vectors: float32 blobs in `chunks.embedding`; a knowledge base's matrix is loaded once
  into memory and searched with numpy (about 8 ms at 100k × 384 on two cores, measured in
  shared/reference/offline-models.md). The cached matrix is keyed by the base's
  `index_version`, bumped in the transaction that changes its chunks, so every process
  notices a change on its next query.
- full text: SQLite's FTS5 (`chunks_fts`, kept by triggers) ranked by bm25, or
  PostgreSQL's tsvector ('simple' configuration, GIN index) ranked by ts_rank_cd, both over
  the normalised `search_text` (store.search_text), so both engines find the same words.

Only chunks of a document's live generation are ever returned: a document being replaced
shows its old chunks until the new ones take over, in one commit.
"""

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.store.search_text import query_terms
from tertulia.store.tables import Chunk, Document, KnowledgeBase


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float


def pack(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


@dataclass
class _Matrix:
    version: int
    chunk_ids: list[int]
    metadata: list[dict[str, Any]]
    vectors: np.ndarray  # rows normalised to unit length


def _live_chunks(base_id: str):  # type: ignore[no-untyped-def]
    return (
        select(Chunk.id, Chunk.embedding, Chunk.meta)
        .join(Document, Document.id == Chunk.document_id)
        .where(
            Chunk.knowledge_base_id == base_id,
            Chunk.generation == Document.generation,
            Chunk.embedding.is_not(None),
        )
        .order_by(Chunk.document_id, Chunk.position)
    )


def _normalised(blobs: list[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 0), dtype="<f4")
    vectors = np.vstack([unpack(blob) for blob in blobs])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _ranked(vectors: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ query
    return scores, np.argsort(-scores)


def matches(metadata: dict[str, Any], filters: dict[str, Any]) -> bool:
    """Metadata filters: every key must equal (or, for a list, be one of) the given value."""
    for key, wanted in filters.items():
        value = metadata.get(key)
        if isinstance(wanted, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


class VectorCache:
    """One per process: each knowledge base's matrix, reloaded when its version moves."""

    def __init__(self) -> None:
        self._matrices: dict[str, _Matrix] = {}
        self._lock = threading.Lock()

    async def _matrix(self, session: AsyncSession, base_id: str) -> _Matrix:
        version = await session.scalar(select(KnowledgeBase.index_version).where(KnowledgeBase.id == base_id))
        cached = self._matrices.get(base_id)
        if cached is not None and cached.version == version:
            return cached
        rows = (await session.execute(_live_chunks(base_id))).all()
        vectors = await anyio.to_thread.run_sync(_normalised, [row.embedding for row in rows])
        matrix = _Matrix(version or 0, [row.id for row in rows], [row.meta for row in rows], vectors)
        with self._lock:
            self._matrices[base_id] = matrix
        return matrix

    async def search(
        self,
        session: AsyncSession,
        base_ids: Sequence[str],
        query: Sequence[float],
        limit: int,
        filters: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """The `limit` nearest chunks by cosine similarity, over several bases at once."""
        wanted = np.asarray(query, dtype="<f4")
        wanted = wanted / (np.linalg.norm(wanted) or 1.0)
        hits: list[Hit] = []
        for base_id in base_ids:
            matrix = await self._matrix(session, base_id)
            if not matrix.chunk_ids or matrix.vectors.shape[1] != wanted.shape[0]:
                continue
            # Off the event loop: a large base's product and sort take milliseconds.
            scores, order = await anyio.to_thread.run_sync(_ranked, matrix.vectors, wanted)
            taken = 0
            for row in order:
                if filters and not matches(matrix.metadata[row], filters):
                    continue
                hits.append(Hit(matrix.chunk_ids[row], float(scores[row])))
                taken += 1
                if taken == limit:
                    break
        hits.sort(key=lambda hit: -hit.score)
        return hits[:limit]

    def forget(self, base_id: str) -> None:
        with self._lock:
            self._matrices.pop(base_id, None)


_SQLITE_SEARCH = text(
    """
    SELECT c.id AS chunk_id, c.metadata AS meta, -bm25(chunks_fts) AS score
    FROM chunks_fts
    JOIN chunks AS c ON c.id = chunks_fts.rowid
    JOIN documents AS d ON d.id = c.document_id AND d.generation = c.generation
    WHERE chunks_fts MATCH :match AND c.knowledge_base_id IN :bases
    ORDER BY bm25(chunks_fts)
    LIMIT :limit
    """
).bindparams(bindparam("bases", expanding=True))

_POSTGRES_SEARCH = text(
    """
    SELECT c.id AS chunk_id, c.metadata AS meta,
           ts_rank_cd(to_tsvector('simple', c.search_text), to_tsquery('simple', :match)) AS score
    FROM chunks AS c
    JOIN documents AS d ON d.id = c.document_id AND d.generation = c.generation
    WHERE to_tsvector('simple', c.search_text) @@ to_tsquery('simple', :match)
      AND c.knowledge_base_id IN :bases
    ORDER BY score DESC, c.id
    LIMIT :limit
    """
).bindparams(bindparam("bases", expanding=True))


def _quoted(term: str, dialect: str) -> str:
    if dialect == "sqlite":
        return '"' + term.replace('"', '""') + '"'
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


async def search_text(
    session: AsyncSession,
    base_ids: Sequence[str],
    query: str,
    limit: int,
    filters: dict[str, Any] | None = None,
) -> list[Hit]:
    """The `limit` best chunks by full text: any query term may match, rarer ones count more."""
    words = query_terms(query)
    if not words or not base_ids:
        return []
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    statement = _SQLITE_SEARCH if dialect == "sqlite" else _POSTGRES_SEARCH
    match = " OR ".join(_quoted(word, dialect) for word in words)
    if dialect != "sqlite":
        match = " | ".join(_quoted(word, dialect) for word in words)
    # Filters are applied to what the index ranked, so ask for more when filtering.
    fetch = limit * 5 if filters else limit
    rows = (await session.execute(statement, {"match": match, "bases": list(base_ids), "limit": fetch})).all()
    hits = []
    for row in rows:
        metadata = row.meta if isinstance(row.meta, dict) else _json(row.meta)
        if filters and not matches(metadata, filters):
            continue
        hits.append(Hit(row.chunk_id, float(row.score)))
    return hits[:limit]


def _json(value: Any) -> dict[str, Any]:
    """Raw SQL hands JSON columns back as text on SQLite."""
    return dict(json.loads(value)) if value else {}
