"""Hybrid retrieval: a vector leg and a full-text leg, fused, optionally reranked.

- Each leg ranks a knowledge base's live chunks on its own (store.index); when one leg finds
  nothing, the other still answers.
- Fusion, three ways, measured by bench/retrieval.py: "gated" (the default) scores every
  candidate of either leg by its similarity and lets a full-text match add to it only where
  that similarity is plausible; "convex", a weighted sum of both legs' min-max normalised
  scores; "rrf", reciprocal rank fusion (k = 60). Convex and RRF beat either leg when
  question and documents share a language, but a question in another language than the
  documents makes the text leg match on chance words, and both fell far below the vector
  leg alone (nDCG@10 0.54 and 0.46 vs 0.76 on bench/data/crosslingual); gated does not.
- Rerank: when the bot's toolbox (or its account) routes `rerank` to a model, or the server
  has a cross-encoder of its own (TERTULIA_RERANK_MODEL_PATH), the fused candidates are
  re-scored by it; without one this step is off (no packaged cross-encoder exists).
- Every source's `score` is the cosine similarity between the question and the chunk
  (computed for full-text hits too), so `min_score` means the same whichever leg found it.
  Multilingual-e5 cosines sit in a narrow band (unrelated ≈ 0.7, related ≈ 0.85): set
  thresholds for the embedder in use.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import Invalid
from tertulia.core.knowledge.bases import get_knowledge_base
from tertulia.core.knowledge.query_cache import CachedQueries, QueryVectors
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.models import embedder_for_base, resolve, resolve_for_account
from tertulia.core.principal import Principal
from tertulia.providers.base import Embedder, Reranker
from tertulia.providers.registry import ModelRegistry
from tertulia.store.index import Hit, search_text, unpack
from tertulia.store.session import Database
from tertulia.store.tables import Bot, Chunk, Document, KnowledgeBase

Mode = Literal["hybrid", "vector", "text"]
Fusion = Literal["rrf", "convex", "gated"]
RRF_K = 60
MAX_QUERY_CHARS = 4000


@dataclass(frozen=True)
class Source:
    knowledge_base_id: str
    document_id: str
    document_name: str
    position: int
    content: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_ref(self) -> str:
        return f"{self.document_id}:{self.position}"


@dataclass(frozen=True)
class Query:
    text: str
    top_k: int = 5
    min_score: float | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    mode: Mode = "hybrid"
    fusion: Fusion = "gated"
    candidates: int = 0  # per leg; 0: max(4 × top_k, 20)


@dataclass(frozen=True)
class Found:
    sources: list[Source]
    seconds: float


def fuse(legs: Sequence[Sequence[Hit]], how: Fusion) -> list[tuple[int, float]]:
    """Chunk ids with their fused score, best first."""
    scores: dict[int, float] = {}
    for hits in legs:
        if not hits:
            continue
        if how == "rrf":
            for rank, hit in enumerate(hits):
                scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        else:
            values = [hit.score for hit in hits]
            low, high = min(values), max(values)
            span = (high - low) or 1.0
            for hit in hits:
                scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + (hit.score - low) / span / len(legs)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


async def search(
    session: AsyncSession,
    vectors: VectorIndex,
    base_ids: Sequence[str],
    embedder: Embedder,
    query: Query,
) -> Found:
    """The best chunks of these (already authorised) bases for `query`."""
    started = time.perf_counter()
    question = query.text.strip()
    if not question:
        raise Invalid("the query is empty", {"field": "query"})
    if len(question) > MAX_QUERY_CHARS:
        raise Invalid(f"the query is longer than {MAX_QUERY_CHARS} characters", {"field": "query"})
    if not 1 <= query.top_k <= 100:
        raise Invalid("top_k must be between 1 and 100", {"field": "top_k"})
    if not base_ids:
        return Found([], time.perf_counter() - started)
    wanted = query.candidates or max(4 * query.top_k, 20)
    [query_vector] = await embedder.embed([question], "query")
    vector_hits = (
        await vectors.search(session, base_ids, query_vector, wanted, query.filters)
        if query.mode != "text"
        else []
    )
    text_hits = (
        await search_text(session, base_ids, question, wanted, query.filters)
        if query.mode != "vector"
        else []
    )
    if query.fusion == "gated" and query.mode == "hybrid":
        sources = await _gated(session, vector_hits, text_hits, query_vector, embedder.relevance_floor)
    else:
        ranked = fuse([vector_hits, text_hits], query.fusion)
        sources = await _sources(session, [chunk_id for chunk_id, _score in ranked], query_vector)
    if query.min_score is not None:
        sources = [source for source in sources if source.score >= query.min_score]
    return Found(sources[: query.top_k], time.perf_counter() - started)


# Chosen with bench/retrieval.py (and a sweep over 0.6–0.8 and margins 0–0.02): on XQuAD es
# and zh and on bench/data/crosslingual, this is the one setting that is never below the
# better single leg.
GATED_VECTOR_WEIGHT = 0.6
GATE_MARGIN = 0.02  # above the embedder's floor for "unrelated"


async def _gated(
    session: AsyncSession,
    vector_hits: list[Hit],
    text_hits: list[Hit],
    query_vector: Sequence[float],
    floor: float,
) -> list[Source]:
    """Both legs propose candidates; every candidate is scored by its similarity to the
    question, and a full-text match adds to it only where the similarity says the chunk
    is plausibly about the question (at or above the embedder's floor). Words shared by
    chance — a question in one language, documents in another — then cannot push an
    unrelated chunk above the one that answers."""
    text_scores = {hit.chunk_id: hit.score for hit in text_hits}
    candidates = list(dict.fromkeys([hit.chunk_id for hit in vector_hits] + list(text_scores)))
    found = await _sources_by_id(session, candidates, query_vector)
    if not found:
        return []
    similarities = [source.score for _chunk_id, source in found]
    low, span = min(similarities), (max(similarities) - min(similarities)) or 1.0
    text_low = min(text_scores.values(), default=0.0)
    text_span = (max(text_scores.values(), default=0.0) - text_low) or 1.0

    def fused(item: tuple[int, Source]) -> float:
        chunk_id, source = item
        text_part = 0.0
        if chunk_id in text_scores and source.score >= floor + GATE_MARGIN:
            text_part = (text_scores[chunk_id] - text_low) / text_span
        return GATED_VECTOR_WEIGHT * (source.score - low) / span + (1 - GATED_VECTOR_WEIGHT) * text_part

    return [source for _chunk_id, source in sorted(found, key=lambda item: -fused(item))]


async def rerank(
    question: str, sources: Sequence[Source], reranker: Reranker, top_n: int, min_score: float | None = None
) -> list[Source]:
    """Re-scores the candidates with a rerank model; keeps the best `top_n` above `min_score`.

    The similarity the candidate had stays in its metadata as `similarity`.
    """
    if not sources:
        return []
    scores = await reranker.rerank(question, [source.content for source in sources])
    order = sorted(range(len(sources)), key=lambda index: -scores[index])
    ranked = [_rescored(sources[index], scores[index]) for index in order]
    if min_score is not None:
        ranked = [source for source in ranked if source.score >= min_score]
    return ranked[:top_n]


def _rescored(source: Source, score: float) -> Source:
    return Source(
        source.knowledge_base_id,
        source.document_id,
        source.document_name,
        source.position,
        source.content,
        float(score),
        {**source.metadata, "similarity": source.score},
    )


async def _sources(
    session: AsyncSession, chunk_ids: list[int], query_vector: Sequence[float]
) -> list[Source]:
    """The chunks behind these ids, in this order, scored by cosine similarity."""
    return [source for _chunk_id, source in await _sources_by_id(session, chunk_ids, query_vector)]


async def _sources_by_id(
    session: AsyncSession, chunk_ids: list[int], query_vector: Sequence[float]
) -> list[tuple[int, Source]]:
    """`_sources` with each source's chunk id beside it."""
    if not chunk_ids:
        return []
    rows = (
        await session.execute(
            select(Chunk, Document.name)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.id.in_(chunk_ids), Chunk.generation == Document.generation)
        )
    ).all()
    by_id = {row[0].id: row for row in rows}
    wanted = np.asarray(query_vector, dtype="<f4")
    wanted = wanted / (np.linalg.norm(wanted) or 1.0)
    sources: list[tuple[int, Source]] = []
    for chunk_id in chunk_ids:
        row = by_id.get(chunk_id)
        if row is None:  # replaced between the two reads: the new version answers next time
            continue
        chunk, document_name = row
        metadata = dict(chunk.meta)
        content = chunk.text
        if "answer" in metadata:  # a Q&A pair: the question was indexed, the answer is returned
            metadata["question"] = chunk.text
            content = str(metadata.pop("answer"))
        similarity = 0.0
        if chunk.embedding is not None:
            stored = unpack(chunk.embedding)
            if stored.shape == wanted.shape:
                similarity = float(stored @ wanted / (np.linalg.norm(stored) or 1.0))
        sources.append(
            (
                chunk_id,
                Source(
                    chunk.knowledge_base_id,
                    chunk.document_id,
                    document_name,
                    chunk.position,
                    content,
                    round(similarity, 6),
                    metadata,
                ),
            )
        )
    return sources


class Retriever:
    """What the chat engine asks: the sources a bot's knowledge offers for a question.

    CriaBot's parameters, on the bot: `top_k` candidates above `min_k` similarity (when 0,
    the embedder's measured floor for "unrelated"), then the best `top_n` above `min_n` (the
    rerank score when the bot has a rerank model, else the similarity). Bases indexed with
    different embedders are each searched with their own.
    """

    def __init__(
        self,
        database: Database,
        models: ModelRegistry,
        vectors: VectorIndex,
        queries: QueryVectors | None = None,
    ) -> None:
        self._database = database
        self._models = models
        self.vectors = vectors
        self._queries = queries

    async def close(self) -> None:
        if self._queries is not None:
            await self._queries.close()

    async def _embedder(self, session: AsyncSession, base: KnowledgeBase) -> Embedder:
        """The base's embedder, with questions asked before looked up in the query cache."""
        embedder = await embedder_for_base(session, self._models, base)
        if self._queries is None:
            return embedder
        return CachedQueries(embedder, self._queries, base.account_id)

    async def for_base(
        self, actor: Principal, base_id: str, query: Query, rerank_with: ModelChoice | None = None
    ) -> Found:
        """A search of one knowledge base the caller can reach (ChatAgent's /search),
        reranked by the named model when one is given."""
        started = time.perf_counter()
        async with self._database.session() as session:
            base = await get_knowledge_base(session, actor, base_id)
            embedder = await self._embedder(session, base)
            if rerank_with is None:
                return await search(session, self.vectors, [base.id], embedder, query)
            resolved = await resolve_for_account(session, actor, rerank_with)
            wider = replace(query, top_k=min(100, max(query.top_k, 20)), min_score=None)
            found = await search(session, self.vectors, [base.id], embedder, wider)
        reranker = self._models.reranker(rerank_with, resolved.credentials)
        sources = await rerank(query.text, found.sources, reranker, query.top_k, query.min_score)
        return Found(sources, time.perf_counter() - started)

    async def knows(self, bot: Bot, also_from: Sequence[Bot] = ()) -> bool:
        """Whether these bots' knowledge bases hold anything searchable at all: a bot whose
        bases are empty answers as a bot without knowledge, not with its no-context message."""
        base_ids = [base.id for other in (bot, *also_from) for base in other.knowledge_bases]
        if not base_ids:
            return False
        async with self._database.session() as session:
            found = await session.scalar(
                select(Chunk.id).where(Chunk.knowledge_base_id.in_(base_ids)).limit(1)
            )
        return found is not None

    async def for_bot(self, bot: Bot, question: str, also_from: Sequence[Bot] = ()) -> list[Source]:
        """The sources for `bot`'s question, from its bases and those of `also_from` (bots the
        caller may reach: CriaBot's extra_bots), with `bot`'s retrieval settings."""
        unique = {base.id: base for other in (bot, *also_from) for base in other.knowledge_bases}
        bases = list(unique.values())
        if not bases:
            return []
        found: list[Source] = []
        async with self._database.session() as session:
            groups: dict[str, tuple[Embedder, list[str]]] = {}
            for base in bases:
                embedder = await self._embedder(session, base)
                groups.setdefault(embedder.model_id, (embedder, []))[1].append(base.id)
            for embedder, base_ids in groups.values():
                # min_k 0 (unset) means the embedder's own measured floor for "unrelated".
                floor = bot.min_k or embedder.relevance_floor or None
                query = Query(question, top_k=bot.top_k, min_score=floor)
                found.extend((await search(session, self.vectors, base_ids, embedder, query)).sources)
            rerank_with = await resolve(session, bot, "rerank")
        found = sorted(found, key=lambda source: -source.score)[: bot.top_k]
        choice = rerank_with.choice or self._models.default_rerank
        if choice is not None:
            reranker = self._models.reranker(choice, rerank_with.credentials)
            return await rerank(question, found, reranker, bot.top_n, bot.min_n or None)
        return [source for source in found if not bot.min_n or source.score >= bot.min_n][: bot.top_n]
