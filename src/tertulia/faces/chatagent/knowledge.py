"""ChatAgent /knowledge/bases: knowledge bases, their documents (ingested by background
jobs, visible at /jobs/{id}) and search."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.accounts import Principal
from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import Invalid
from tertulia.core.knowledge import bases, documents
from tertulia.core.knowledge.retrieval import Query
from tertulia.core.media import JOB_KIND as MEDIA_JOB
from tertulia.faces.chatagent.bots import Limit, Offset
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.media_public import batch_results
from tertulia.faces.chatagent.schemas import (
    DocumentAccepted,
    DocumentPublic,
    DocumentsPublic,
    Done,
    JobPublic,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
    QaDocumentCreate,
    SearchRequest,
    SearchResult,
    SearchResults,
    TextDocumentCreate,
    UrlDocumentCreate,
)
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.runtime import Runtime
from tertulia.store.tables import Document, Job, KnowledgeBase

router = APIRouter(prefix="/knowledge/bases", tags=["knowledge"])


def base_public(base: KnowledgeBase) -> KnowledgeBasePublic:
    return KnowledgeBasePublic(
        id=base.id,
        user_id=base.account_id,
        name=base.name,
        description=base.description,
        vector_store_type=base.vector_store_type,
        embedding_model=base.embedding_model,
        chunk_size=base.chunk_size,
        chunk_overlap=base.chunk_overlap,
        chunking_strategy=base.chunking_strategy,
        metadata=base.meta,
        created_at=base.created_at,
        updated_at=base.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_knowledge_base(
    body: KnowledgeBaseCreate, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> KnowledgeBasePublic:
    base = await bases.create_knowledge_base(
        session, principal, bases.KnowledgeBaseDraft(**body.model_dump()), runtime.models, runtime.vectors
    )
    return base_public(base)


@router.get("")
async def list_knowledge_bases(
    principal: CurrentPrincipal, session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> KnowledgeBasesPublic:
    page = await bases.list_knowledge_bases(session, principal, limit, offset)
    return KnowledgeBasesPublic(
        knowledge_bases=[base_public(base) for base in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{base_id}")
async def get_knowledge_base(
    base_id: str, principal: CurrentPrincipal, session: SessionDep
) -> KnowledgeBasePublic:
    return base_public(await bases.get_knowledge_base(session, principal, base_id))


@router.delete("/{base_id}")
async def delete_knowledge_base(
    base_id: str, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> Done:
    await bases.delete_knowledge_base(session, principal, base_id, runtime.vectors)
    return Done(message="Knowledge base deleted")


# --- documents, jobs and search (documents are ingested in the background) -----------------


def job_public(job: Job) -> JobPublic:
    public = JobPublic.model_validate(job, from_attributes=True)
    if job.kind == MEDIA_JOB:  # a multimodal batch: its results, as /batch-process shows them
        public.result = {"results": [item.model_dump(mode="json") for item in batch_results(job.result)]}
    else:
        public.result = None
    return public


def document_public(document: Document) -> DocumentPublic:
    return DocumentPublic(
        id=document.id,
        knowledge_base_id=document.knowledge_base_id,
        name=document.name,
        source_type=document.source_type,
        media_type=document.media_type,
        size_bytes=document.size_bytes,
        status=document.status,
        error=document.error,
        chunk_count=document.chunk_count,
        metadata=document.meta,
        created_at=document.created_at,
        updated_at=document.updated_at,
    )


def _accepted(accepted: documents.Accepted) -> DocumentAccepted:
    return DocumentAccepted(**document_public(accepted.document).model_dump(), job=job_public(accepted.job))


async def _queue(
    session: AsyncSession, principal: Principal, base_id: str, upload: documents.Upload, runtime: Runtime
) -> DocumentAccepted:
    settings = runtime.settings
    accepted = await documents.add_document(
        session,
        principal,
        base_id,
        upload,
        runtime.jobs,
        max_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        allow_private_urls=settings.allow_private_urls,
    )
    return _accepted(accepted)


def _form_metadata(raw: str | None) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise Invalid("metadata must be a JSON object", {"field": "metadata"}) from error
    if not isinstance(value, dict):
        raise Invalid("metadata must be a JSON object", {"field": "metadata"})
    return dict(clean(value, "metadata"))


@router.post("/{base_id}/documents", status_code=status.HTTP_202_ACCEPTED)
async def upload_document(
    base_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[
        UploadFile, File(description="The document: text, Markdown, HTML, PDF, DOCX, XLSX, CSV or JSON")
    ],
    metadata: Annotated[str | None, Form(description="A JSON object kept with every chunk")] = None,
) -> DocumentAccepted:
    data = await file.read(runtime.settings.max_upload_bytes + 1)
    upload = documents.Upload(
        "file",
        clean(file.filename or "", "file") or "upload",
        data,
        file.content_type,
        metadata=_form_metadata(metadata),
    )
    return await _queue(session, principal, base_id, upload, runtime)


@router.post("/{base_id}/documents/text", status_code=status.HTTP_202_ACCEPTED)
async def add_text(
    base_id: str,
    body: TextDocumentCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> DocumentAccepted:
    upload = documents.Upload("text", body.name, body.content.encode(), "text/plain", metadata=body.metadata)
    return await _queue(session, principal, base_id, upload, runtime)


@router.post("/{base_id}/documents/url", status_code=status.HTTP_202_ACCEPTED)
async def add_url(
    base_id: str,
    body: UrlDocumentCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> DocumentAccepted:
    upload = documents.Upload("url", body.name or body.url, url=body.url, metadata=body.metadata)
    return await _queue(session, principal, base_id, upload, runtime)


@router.post("/{base_id}/documents/qa", status_code=status.HTTP_202_ACCEPTED)
async def add_questions(
    base_id: str,
    body: QaDocumentCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> DocumentAccepted:
    pairs = json.dumps([[pair.question, pair.answer] for pair in body.pairs]).encode()
    upload = documents.Upload("qa", body.name, pairs, "application/json", metadata=body.metadata)
    return await _queue(session, principal, base_id, upload, runtime)


@router.get("/{base_id}/documents")
async def list_documents(
    base_id: str, principal: CurrentPrincipal, session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> DocumentsPublic:
    page = await documents.list_documents(session, principal, base_id, limit, offset)
    return DocumentsPublic(
        documents=[document_public(document) for document in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{base_id}/documents/{document_id}")
async def get_document(
    base_id: str, document_id: str, principal: CurrentPrincipal, session: SessionDep
) -> DocumentPublic:
    return document_public(await documents.get_document(session, principal, base_id, document_id))


@router.delete("/{base_id}/documents/{document_id}")
async def delete_document(
    base_id: str, document_id: str, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> Done:
    await documents.delete_document(session, principal, base_id, document_id, runtime.vectors)
    return Done(message="Document deleted")


@router.post("/{base_id}/search")
async def search_knowledge_base(
    base_id: str, body: SearchRequest, principal: CurrentPrincipal, runtime: RuntimeDep
) -> SearchResults:
    query = Query(body.query, body.top_k, body.score_threshold, body.filters, body.mode, body.fusion)
    rerank_with = ModelChoice(body.rerank.provider, body.rerank.model, "rerank") if body.rerank else None
    found = await runtime.retriever.for_base(principal, base_id, query, rerank_with)
    return SearchResults(
        results=[
            SearchResult(
                content=source.content,
                metadata=source.metadata,
                score=source.score,
                document_id=source.document_id,
                chunk_id=source.chunk_ref,
            )
            for source in found.sources
        ],
        total=len(found.sources),
        query_time=round(found.seconds, 4),
    )


jobs_router = APIRouter(prefix="/jobs", tags=["knowledge"])


@jobs_router.get("/{job_id}")
async def get_job(job_id: str, principal: CurrentPrincipal, session: SessionDep) -> JobPublic:
    return job_public(await documents.get_job(session, principal, job_id))
