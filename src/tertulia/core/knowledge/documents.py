"""Documents in a knowledge base: accepted on the request path, ingested by a job.

Adding a document only checks what can be checked at once (the base is the caller's, the
input is not empty or too large, the embedding model can be reached), stores the upload
with a queued job and returns both; parsing, chunking and embedding happen in the
background (core.knowledge.ingest). A document with the same name as an existing one
replaces it when its job finishes: until then searches see the old version.
"""

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.bots import get_bot
from tertulia.core.errors import Conflict, Invalid, NotFound, PayloadTooLarge
from tertulia.core.knowledge.bases import get_knowledge_base
from tertulia.core.knowledge.fetching import check_url
from tertulia.core.knowledge.parsing import parse_nodes, parse_qa, precheck
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.paging import Page, count_rows
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.jobs import JobRunner
from tertulia.store.tables import Chunk, Document, Job, KnowledgeBase, utcnow

SOURCE_TYPES = ("file", "url", "text", "nodes", "qa")
MAX_NAME = 512
MAX_METADATA_BYTES = 16_384


@dataclass(frozen=True)
class Upload:
    """What a client sent: `data` holds the file, the text or the JSON of nodes / Q&A pairs."""

    source_type: str
    name: str
    data: bytes = b""
    media_type: str | None = None
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    document: Document
    job: Job


def _check(upload: Upload, max_bytes: int) -> None:
    if upload.source_type not in SOURCE_TYPES:
        raise Invalid(f"unknown source type {upload.source_type!r}", {"allowed": list(SOURCE_TYPES)})
    name = upload.name.strip()
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"a document name has 1 to {MAX_NAME} characters", {"field": "name"})
    if upload.source_type == "url":
        if not upload.url or not upload.url.lower().startswith(("http://", "https://")):
            raise Invalid("a URL must start with http:// or https://", {"field": "url"})
    elif not upload.data.strip():
        raise Invalid(f"{name!r} is empty", {"field": "file" if upload.source_type == "file" else "content"})
    if len(upload.data) > max_bytes:
        raise PayloadTooLarge(f"{name!r} is larger than {max_bytes} bytes", {"max_bytes": max_bytes})
    if len(json.dumps(upload.metadata, default=str)) > MAX_METADATA_BYTES:
        raise Invalid("metadata is too large", {"field": "metadata", "max_bytes": MAX_METADATA_BYTES})
    if upload.source_type in ("nodes", "qa"):
        _check_structured(upload)


async def _checked(
    upload: Upload, max_bytes: int, max_unpacked_bytes: int, allow_private_urls: bool = False
) -> None:
    _check(upload, max_bytes)
    if upload.source_type == "url" and upload.url:
        await check_url(upload.url, allow_private=allow_private_urls)
    if upload.source_type == "file":
        await anyio.to_thread.run_sync(
            lambda: precheck(
                upload.data,
                upload.name,
                upload.media_type,
                max_bytes=max_bytes,
                max_unpacked_bytes=max_unpacked_bytes,
            )
        )


def _check_structured(upload: Upload) -> None:
    """Nodes and Q&A pairs are read at once: malformed ones are a 400, not a failed job."""
    try:
        items = json.loads(upload.data)
    except ValueError as error:
        raise Invalid(f"{upload.name!r} is not valid JSON", {"field": "content"}) from error
    if upload.source_type == "nodes":
        parse_nodes(items)
        return
    if not isinstance(items, list) or not all(
        isinstance(pair, list | tuple) and len(pair) == 2 for pair in items
    ):
        raise Invalid("questions come as [question, answer] pairs", {"field": "content"})
    parse_qa([(str(question), str(answer)) for question, answer in items])


async def add_document(
    session: AsyncSession,
    actor: Principal,
    base_id: str,
    upload: Upload,
    jobs: JobRunner,
    *,
    max_bytes: int,
    max_unpacked_bytes: int,
    checked: bool = False,
    allow_private_urls: bool = False,
) -> Accepted:
    """Queues `upload` for ingestion into the base; replaces a document of the same name.

    A file is pre-checked first (type, zip bomb, a PDF that cannot be opened), in a worker
    thread: what can be refused at once is a 4xx, not a failed job later.
    """
    actor.require("knowledge:write")
    base = await get_knowledge_base(session, actor, base_id)
    if not checked:
        await _checked(upload, max_bytes, max_unpacked_bytes, allow_private_urls)
    name = upload.name.strip()
    document = await session.scalar(
        select(Document).where(Document.knowledge_base_id == base.id, Document.name == name)
    )
    if document is None:
        await limits.require_room(session, actor, "records")
        document = Document(account_id=actor.account_id, knowledge_base_id=base.id, name=name)
        session.add(document)
    document.source_type = upload.source_type
    document.media_type = upload.media_type
    document.size_bytes = len(upload.data)
    document.content_hash = hashlib.sha256(upload.data or (upload.url or "").encode()).hexdigest()
    document.meta = upload.metadata
    document.text = upload.data.decode("utf-8") if upload.source_type == "text" else None
    document.status, document.error = "queued", None
    document.updated_at = utcnow()
    await session.flush()
    job = Job(
        account_id=actor.account_id,
        kind="ingest",
        knowledge_base_id=base.id,
        document_id=document.id,
        params={
            "source_type": upload.source_type,
            "name": name,
            "media_type": upload.media_type,
            "url": upload.url,
        },
        payload=upload.data,
    )
    session.add(job)
    await session.flush()
    document.job_id = job.id  # an older job still queued for this document will step aside
    await session.commit()
    await jobs.submit(job.id)
    return Accepted(document, job)


async def get_document(session: AsyncSession, actor: Principal, base_id: str, document_id: str) -> Document:
    base = await get_knowledge_base(session, actor, base_id)
    document = await session.scalar(
        select(Document).where(Document.id == document_id, Document.knowledge_base_id == base.id)
    )
    if document is None:
        raise NotFound("document not found")
    return document


async def list_documents(
    session: AsyncSession, actor: Principal, base_id: str, limit: int, offset: int
) -> Page[Document]:
    base = await get_knowledge_base(session, actor, base_id)
    query = select(Document).where(Document.knowledge_base_id == base.id)
    total = await count_rows(session, query)
    rows = await session.scalars(query.order_by(Document.created_at, Document.id).limit(limit).offset(offset))
    return Page(list(rows), total, limit, offset)


async def delete_document(
    session: AsyncSession, actor: Principal, base_id: str, document_id: str, vectors: VectorIndex
) -> None:
    """Removes the document with its chunks, vectors and jobs, in one transaction (vectors kept
    in an external store first: if it cannot be reached, nothing is removed)."""
    actor.require("knowledge:write")
    document = await get_document(session, actor, base_id, document_id)
    base = await session.get(KnowledgeBase, document.knowledge_base_id)
    if base is not None:
        await vectors.remove_document(base, document.id)
    await session.delete(document)
    if base is not None:
        base.index_version += 1
    await session.commit()


async def add_and_wait(
    session: AsyncSession,
    actor: Principal,
    base_id: str,
    upload: Upload,
    jobs: JobRunner,
    *,
    max_bytes: int,
    max_unpacked_bytes: int,
    timeout_seconds: float,
    field: str,
) -> Accepted:
    """`add_document`, then its job waited for, for faces that answer once the content is
    searchable (CriaBot's documents, ChatBotKit's records). A failed job is an Invalid naming
    `field`; a job still running when the time is up comes back as it stands."""
    accepted = await add_document(
        session, actor, base_id, upload, jobs, max_bytes=max_bytes, max_unpacked_bytes=max_unpacked_bytes
    )
    job = await finished_job(session, actor, accepted.job.id, timeout_seconds)
    if job.status == "failed":
        raise Invalid(job.error or f"{upload.name!r} could not be indexed", {"field": field})
    return Accepted(accepted.document, job)


async def add_bot_document(
    session: AsyncSession,
    actor: Principal,
    bot_id: str,
    upload: Upload,
    jobs: JobRunner,
    *,
    max_bytes: int,
    max_unpacked_bytes: int,
) -> Accepted:
    """`add_document` into the bot's own knowledge base, which is made only once the upload
    has passed its checks: a refused upload leaves nothing behind."""
    await get_bot(session, actor, bot_id)
    await _checked(upload, max_bytes, max_unpacked_bytes)
    base = await bot_knowledge_base(session, actor, bot_id)
    return await add_document(
        session,
        actor,
        base.id,
        upload,
        jobs,
        max_bytes=max_bytes,
        max_unpacked_bytes=max_unpacked_bytes,
        checked=True,
    )


async def find_document(
    session: AsyncSession, actor: Principal, base_id: str, name: str, source_types: Sequence[str]
) -> Document:
    """The base's document called `name`, among those of these source types."""
    base = await get_knowledge_base(session, actor, base_id)
    document = await session.scalar(
        select(Document)
        .where(
            Document.knowledge_base_id == base.id,
            Document.name == name.strip(),
            Document.source_type.in_(source_types),
        )
        .execution_options(populate_existing=True)  # as it stands now, after a job's commits
    )
    if document is None:
        raise NotFound(f"there is no document named {name!r}", {"field": "document_name"})
    return document


async def expect_document(
    session: AsyncSession,
    actor: Principal,
    base_id: str,
    name: str,
    source_types: Sequence[str],
    exists: bool,
) -> None:
    """Refuses to add a name that is taken (a Conflict) or to update one that is not (NotFound)."""
    try:
        await find_document(session, actor, base_id, name, source_types)
    except NotFound:
        if exists:
            raise NotFound(f"there is no {name!r} to update", {"field": "file_name"}) from None
        return
    if not exists:
        raise Conflict(f"{name!r} already exists: update it instead", {"field": "file_name"})


async def document_names(
    session: AsyncSession, actor: Principal, base_id: str, source_types: Sequence[str]
) -> list[str]:
    base = await get_knowledge_base(session, actor, base_id)
    rows = await session.scalars(
        select(Document.name)
        .where(Document.knowledge_base_id == base.id, Document.source_type.in_(source_types))
        .order_by(Document.created_at, Document.id)
    )
    return list(rows)


async def document_tokens(session: AsyncSession, actor: Principal, document: Document) -> int:
    """Tokens embedded for the live version of a document (CriaBot's `token_usage`)."""
    actor.require("knowledge:read")
    total = await session.scalar(
        select(func.coalesce(func.sum(Chunk.tokens), 0)).where(
            Chunk.document_id == document.id, Chunk.generation == document.generation
        )
    )
    return int(total or 0)


async def finished_job(session: AsyncSession, actor: Principal, job_id: str, timeout_seconds: float) -> Job:
    """The job once it is done or failed, or as it stands when the time is up."""
    deadline = time.monotonic() + timeout_seconds
    pause = 0.05
    while True:
        job = await session.scalar(
            owned(actor, Job).where(Job.id == job_id).execution_options(populate_existing=True)
        )
        await session.commit()  # ends the read, so that the next one sees the runner's commits
        if job is None:
            raise NotFound("job not found")
        if job.status in ("done", "failed") or time.monotonic() >= deadline:
            return job
        await anyio.sleep(pause)
        pause = min(pause * 1.5, 0.5)


async def get_job(session: AsyncSession, actor: Principal, job_id: str) -> Job:
    actor.require("knowledge:read")
    return await find_owned(session, actor, Job, Job.id == job_id, missing="job not found")


async def bot_knowledge_base(
    session: AsyncSession, actor: Principal, bot_id: str, embedding_model: str | None = None
) -> KnowledgeBase:
    """The bot's own knowledge base, where documents given to the bot itself live (Bytchat's
    /train, CriaBot's documents and questions): made on first use (embedding with
    `embedding_model`, else the server's default) and linked to the bot, so the one
    retrieval path serves it like any other base."""
    bot = await get_bot(session, actor, bot_id)
    base = await session.scalar(select(KnowledgeBase).where(KnowledgeBase.owner_bot_id == bot.id))
    if base is None:
        await limits.require_room(session, actor, "datasets")
        base = KnowledgeBase(
            account_id=bot.account_id,
            name=f"{bot.name} — own documents"[:128],
            owner_bot_id=bot.id,
            embedding_model=embedding_model,
        )
        session.add(base)
        bot.knowledge_bases.append(base)
        await session.commit()
    return base
