"""The ingestion job: parse → chunk → embed → swap in, with progress and stage timings.

Parsing and chunking run in a worker thread, embedding in batches through the base's
embedder; nothing touches the index until the last step, which in one transaction writes
the new chunks under the document's next generation, makes it the live one and removes
the old chunks (and any left by an attempt that died half-way). So a search sees the old
version or the new one, never both, and a job run twice ends as if run once.
"""

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import Invalid, TertuliaError
from tertulia.core.knowledge.chunking import Chunk as Piece
from tertulia.core.knowledge.chunking import chunk
from tertulia.core.knowledge.fetching import FetchLimits, fetch_url
from tertulia.core.knowledge.parsing import Parsed, parse_file, parse_nodes, parse_qa, parse_text
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.models import embedder_for_base
from tertulia.core.monitoring import instruments, store_log
from tertulia.jobs.claims import holds
from tertulia.providers.base import Embedder
from tertulia.providers.registry import ModelRegistry
from tertulia.store.chroma import ChromaRow
from tertulia.store.index import pack
from tertulia.store.search_text import index_form
from tertulia.store.session import Database
from tertulia.store.tables import Chunk, Document, Job, KnowledgeBase, utcnow

EMBED_BATCH = 32

log = logging.getLogger("tertulia.ingest")


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int
    max_unpacked_bytes: int
    fetch: FetchLimits
    allow_private_urls: bool = False


class Ingestor:
    """The handler of `ingest` jobs."""

    def __init__(
        self, database: Database, models: ModelRegistry, vectors: VectorIndex, limits: IngestLimits
    ) -> None:
        self._database = database
        self._models = models
        self._vectors = vectors
        self._limits = limits

    async def __call__(self, job_id: str) -> None:
        try:
            await self._ingest(job_id)
        except TertuliaError as error:
            await self.failed(job_id, error.message)
            raise

    async def _ingest(self, job_id: str) -> None:
        timings: dict[str, float] = {}
        async with self._database.session() as session:
            job = await session.get(Job, job_id)
            document = await session.get(Document, job.document_id) if job and job.document_id else None
            if job is None or document is None:
                return
            attempt = job.attempts  # the runner's claim: it may store only while it holds that
            if document.job_id != job.id:  # a newer upload of this document took over
                await self._finish(session, job, "superseded", timings)
                return
            base = await session.get(KnowledgeBase, document.knowledge_base_id)
            assert base is not None  # the document's foreign key holds it
            embedder = await embedder_for_base(session, self._models, base)
            document.status = "processing"
            params, payload = dict(job.params), job.payload or b""
            chunk_tokens = max(16, min(base.chunk_size, embedder.max_input_tokens))
            overlap = min(base.chunk_overlap, chunk_tokens // 2)
            strategy = base.chunking_strategy
            await self._stage(session, job, "parse", 0.0)

        started = time.perf_counter()
        parsed, url = await self._parse(params, payload)
        timings["parse"] = time.perf_counter() - started

        async with self._database.session() as session:
            await self._stage(session, await session.get(Job, job_id), "chunk", 0.1, timings)
        started = time.perf_counter()
        counter = embedder.counter()
        pieces = await anyio.to_thread.run_sync(
            lambda: chunk(
                parsed, counter, chunk_tokens=chunk_tokens, overlap_tokens=overlap, strategy=strategy
            )
        )
        if not pieces:
            raise Invalid(f"{params['name']!r} contains no text to index")
        timings["chunk"] = time.perf_counter() - started

        started = time.perf_counter()
        vectors = await self._embed(job_id, embedder, pieces, timings)
        timings["embed"] = time.perf_counter() - started

        started = time.perf_counter()
        extra = {"source": params["name"], **({"url": url} if url else {})}
        async with self._database.session() as session:
            await self._swap_in(
                session, job_id, attempt, pieces, vectors, extra, embedder.model_id, parsed, timings, started
            )

    async def _parse(self, params: dict[str, Any], payload: bytes) -> tuple[Parsed, str | None]:
        kind, name = params["source_type"], params["name"]
        limits = self._limits
        if kind == "url":
            async with httpx.AsyncClient(timeout=limits.fetch.timeout_seconds) as client:
                fetched = await fetch_url(
                    params["url"], client, limits.fetch, allow_private=limits.allow_private_urls
                )
            return await self._read(fetched.data, fetched.filename, fetched.media_type), fetched.url
        if kind == "file":
            return await self._read(payload, name, params.get("media_type")), None
        if kind == "text":
            return parse_text(payload.decode("utf-8"), title=name), None
        try:
            items = json.loads(payload)
        except ValueError as error:
            raise Invalid(f"{name!r} is not valid JSON") from error
        if kind == "nodes":
            return parse_nodes(items), None
        return parse_qa([(str(pair[0]), str(pair[1])) for pair in items]), None

    async def _read(self, data: bytes, filename: str, media_type: str | None) -> Parsed:
        """A file parsed in a worker thread, within the server's size limits."""
        limits = self._limits
        return await anyio.to_thread.run_sync(
            lambda: parse_file(
                data,
                filename,
                media_type,
                max_bytes=limits.max_bytes,
                max_unpacked_bytes=limits.max_unpacked_bytes,
            )
        )

    async def _embed(
        self, job_id: str, embedder: Embedder, pieces: list[Piece], timings: dict[str, float]
    ) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(pieces), EMBED_BATCH):
            batch = [piece.text for piece in pieces[start : start + EMBED_BATCH]]
            vectors.extend(await embedder.embed(batch, "passage"))
            async with self._database.session() as session:
                done = min(len(pieces), start + EMBED_BATCH) / len(pieces)
                await self._stage(session, await session.get(Job, job_id), "embed", 0.2 + 0.7 * done, timings)
        return vectors

    async def _swap_in(
        self,
        session: AsyncSession,
        job_id: str,
        attempt: int,
        pieces: list[Piece],
        vectors: list[list[float]],
        extra: dict[str, Any],
        model_id: str,
        parsed: Parsed,
        timings: dict[str, float],
        started: float,
    ) -> None:
        # Writing to the job row first makes this transaction the only one storing this job's
        # chunks (PostgreSQL locks the row, SQLite the file) until it commits; a runner that was
        # taken over (its worker stalled past its lease) or that finds the job done stops here.
        still_held = await session.execute(
            update(Job)
            .where(holds(job_id, attempt))
            .values(stage="store")
            .execution_options(synchronize_session=False)
        )
        if not still_held.rowcount:  # type: ignore[attr-defined]
            return
        job = await session.get(Job, job_id)
        document = await session.get(Document, job.document_id) if job and job.document_id else None
        if job is None or document is None:
            return  # deleted while it was being ingested: nothing to keep
        if document.job_id != job.id:
            await self._finish(session, job, "superseded", timings)
            return
        base = await session.get(KnowledgeBase, document.knowledge_base_id)
        assert base is not None
        live = document.generation + 1
        # Chunks of any generation but the live one are leftovers; then the new set goes in.
        await session.execute(
            delete(Chunk).where(Chunk.document_id == document.id, Chunk.generation != document.generation)
        )
        rows = []
        for position, (piece, vector) in enumerate(zip(pieces, vectors, strict=True)):
            rows.append(
                Chunk(
                    account_id=document.account_id,
                    knowledge_base_id=base.id,
                    document_id=document.id,
                    generation=live,
                    position=position,
                    text=piece.text,
                    search_text=index_form(piece.text),
                    tokens=piece.tokens,
                    meta={**document.meta, **piece.metadata, **extra},
                    embedding=pack(vector),
                )
            )
        session.add_all(rows)
        await session.flush()
        # The vector stores get the new vectors now; they show once the swap commits.
        await self._vectors.write(
            session,
            base,
            [
                ChromaRow(row.id, vector, document.id, live, row.meta)
                for row, vector in zip(rows, vectors, strict=True)
            ],
        )
        await session.execute(
            delete(Chunk).where(Chunk.document_id == document.id, Chunk.generation == document.generation)
        )
        document.generation = live
        document.status, document.error = "ready", None
        document.chunk_count = len(pieces)
        document.media_type = document.media_type or parsed.media_type
        document.meta = {
            **document.meta,
            "embedding_model": model_id,
            **({"title": parsed.title} if parsed.title and "title" not in document.meta else {}),
        }
        base.index_version += 1
        timings["store"] = time.perf_counter() - started
        job.payload = None  # the upload is no longer needed
        await self._finish(session, job, "done", timings)
        await self._vectors.settle(base, document.id, live)

    async def _stage(
        self,
        session: AsyncSession,
        job: Job | None,
        stage: str,
        progress: float,
        timings: dict[str, float] | None = None,
    ) -> None:
        if job is None:
            return
        job.stage, job.progress = stage, round(progress, 3)
        if timings:
            job.stages = {name: round(seconds, 4) for name, seconds in timings.items()}
        await session.commit()

    async def _finish(self, session: AsyncSession, job: Job, stage: str, timings: dict[str, float]) -> None:
        job.status, job.stage, job.progress = "done", stage, 1.0
        job.stages = {name: round(seconds, 4) for name, seconds in timings.items()}
        job.finished_at = utcnow()
        await session.commit()
        instruments.INGESTION_JOBS_FINISHED.labels("superseded" if stage == "superseded" else "done").inc()

    async def failed(self, job_id: str, reason: str) -> None:
        """The document says why; its previous version, if any, stays searchable. (Also told
        by the job runner when it gives the job up: a time limit, a crash.) The account's log
        says so too, in the same transaction, whichever process ran the job."""
        async with self._database.session() as session:
            job = await session.get(Job, job_id)
            document = await session.get(Document, job.document_id) if job and job.document_id else None
            if document is not None and document.job_id == job_id:
                document.status = "failed" if document.generation == 0 else "ready"
                document.error = reason
                store_log(
                    session,
                    document.account_id,
                    log,
                    logging.ERROR,
                    f"Failed to ingest document {document.name!r}: {reason}",
                    {
                        "error_kind": "ingestion",
                        "document_id": document.id,
                        "knowledge_base_id": document.knowledge_base_id,
                        "job_id": job_id,
                    },
                )
                await session.commit()
                instruments.INGESTION_JOBS_FINISHED.labels("failed").inc()
