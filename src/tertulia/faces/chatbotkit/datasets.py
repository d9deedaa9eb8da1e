"""ChatBotKit datasets (knowledge bases) and their records (text documents), and search.

A record is indexed before `record/create` answers, so it can be searched at once. Its
`source` and `meta` are kept with it (not as the chunks' own `source`, which names the
document).
"""

import json
import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import files
from tertulia.core.accounts import Principal
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.knowledge import bases, documents
from tertulia.core.knowledge.retrieval import Query
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.bots import Body
from tertulia.faces.chatbotkit.common import (
    Caller,
    Paging,
    given_meta,
    merged_meta,
    ms,
    page_response,
)
from tertulia.faces.chatbotkit.files import file_public
from tertulia.faces.chatbotkit.files import limits as file_limits
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.runtime import Runtime
from tertulia.store.tables import Document, File, KnowledgeBase

router = APIRouter(prefix="/dataset", tags=["chatbotkit"])

# Records are indexed before the reply, as ChatBotKit's are, up to this long.
INDEX_WAIT_SECONDS = 120.0
MAX_RECORD_CHARS = 100_000
DEFAULT_SEARCH_RECORDS = 10


def dataset_public(base: KnowledgeBase) -> dict[str, Any]:
    return {
        "id": base.id,
        "createdAt": ms(base.created_at),
        "updatedAt": ms(base.updated_at),
        "name": base.name,
        "description": base.description,
        "meta": base.meta or {},
    }


def record_public(document: Document) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": document.id,
        "createdAt": ms(document.created_at),
        "updatedAt": ms(document.updated_at),
        "text": document.text or "",
        "meta": document.meta.get("record_meta", {}),
    }
    if document.meta.get("record_source"):
        body["source"] = document.meta["record_source"]
    return body


def _text(body: dict[str, Any], name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{name} must be a non-empty string", {"field": name})
    return value


# --- datasets -------------------------------------------------------------------------------


@router.get("/list")
async def list_datasets(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("knowledge:read")
    query = owned(principal, KnowledgeBase).where(KnowledgeBase.owner_bot_id.is_(None))
    items = [dataset_public(base) for base in await paging.page(session, query, KnowledgeBase)]
    return page_response(request, items)


@router.post("/create")
async def create_dataset(
    principal: Caller, session: SessionDep, runtime: RuntimeDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    name = body.get("name") if isinstance(body.get("name"), str) and body["name"].strip() else None
    draft = bases.KnowledgeBaseDraft(
        name=name or f"Dataset {secrets.token_hex(3)}",
        description=body["description"] if isinstance(body.get("description"), str) else "",
        metadata=given_meta(body),
    )
    base = await bases.create_knowledge_base(session, principal, draft, runtime.models, runtime.vectors)
    return {"id": base.id}


@router.get("/{dataset_id}/fetch")
async def fetch_dataset(dataset_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return dataset_public(await bases.get_knowledge_base(session, principal, dataset_id))


@router.post("/{dataset_id}/update")
async def update_dataset(
    dataset_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    base = await bases.get_knowledge_base(session, principal, dataset_id)
    changes: dict[str, Any] = {}
    if isinstance(body.get("name"), str):
        changes["name"] = body["name"]
    if isinstance(body.get("description"), str):
        changes["description"] = body["description"]
    meta = merged_meta(base.meta or {}, body)
    if meta is not None:
        changes["metadata"] = meta
    if changes:
        await bases.update_knowledge_base(session, principal, base.id, changes)
    return {"id": base.id}


@router.post("/{dataset_id}/delete")
async def delete_dataset(
    dataset_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    await bases.delete_knowledge_base(session, principal, dataset_id, runtime.vectors)
    return {"id": dataset_id}


@router.post("/{dataset_id}/search")
async def search(
    dataset_id: str, principal: Caller, runtime: RuntimeDep, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    text = body.get("search") if body.get("search") is not None else body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Invalid("search must be a non-empty string", {"field": "search"})
    found = await runtime.retriever.for_base(principal, dataset_id, Query(text, top_k=DEFAULT_SEARCH_RECORDS))
    records: dict[str, dict[str, Any]] = {}
    for source in found.sources:  # a record's best chunk stands for it
        if source.document_id not in records:
            records[source.document_id] = {
                "id": source.document_id,
                "text": source.content,
                "score": source.score,
            }
            if source.metadata.get("record_source"):
                records[source.document_id]["source"] = source.metadata["record_source"]
    return {"id": dataset_id, "records": list(records.values())}


# --- records --------------------------------------------------------------------------------


async def _record(session: AsyncSession, principal: Principal, dataset_id: str, record_id: str) -> Document:
    document = await documents.get_document(session, principal, dataset_id, record_id)
    if document.source_type != "text":
        raise NotFound("record not found")
    return document


async def _index(
    session: AsyncSession,
    principal: Principal,
    runtime: Runtime,
    dataset_id: str,
    name: str,
    text: str,
    meta: dict[str, Any],
) -> Document:
    if len(text) > MAX_RECORD_CHARS:
        raise Invalid(f"text has at most {MAX_RECORD_CHARS} characters", {"field": "text"})
    accepted = await documents.add_and_wait(
        session,
        principal,
        dataset_id,
        documents.Upload("text", name, text.encode(), "text/plain", metadata=meta),
        runtime.jobs,
        max_bytes=runtime.settings.max_upload_bytes,
        max_unpacked_bytes=runtime.settings.max_unpacked_bytes,
        timeout_seconds=INDEX_WAIT_SECONDS,
        field="text",
    )
    return accepted.document


def _record_meta(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    source = body.get("source", current.get("record_source"))
    if source is not None:
        if not isinstance(source, str) or len(source) > 2048:
            raise Invalid("source must be text", {"field": "source"})
        meta["record_source"] = source
    merged = merged_meta(current.get("record_meta", {}), body)
    record_meta = merged if merged is not None else current.get("record_meta", {})
    if record_meta:
        meta["record_meta"] = record_meta
    if len(json.dumps(meta, default=str)) > 16_384:
        raise Invalid("meta is too large", {"field": "meta"})
    return meta


@router.get("/{dataset_id}/record/list")
async def list_records(
    dataset_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    base = await bases.get_knowledge_base(session, principal, dataset_id)
    query = select(Document).where(Document.knowledge_base_id == base.id, Document.source_type == "text")
    items = [record_public(document) for document in await paging.page(session, query, Document)]
    return page_response(request, items)


@router.post("/{dataset_id}/record/create")
async def create_record(
    dataset_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    text = _text(body, "text", required=True)
    assert text is not None
    name = f"record {secrets.token_hex(8)}"
    document = await _index(session, principal, runtime, dataset_id, name, text, _record_meta(body, {}))
    return {"id": document.id}


@router.get("/{dataset_id}/record/{record_id}/fetch")
async def fetch_record(
    dataset_id: str, record_id: str, principal: Caller, session: SessionDep
) -> dict[str, Any]:
    return record_public(await _record(session, principal, dataset_id, record_id))


@router.post("/{dataset_id}/record/{record_id}/update")
async def update_record(
    dataset_id: str,
    record_id: str,
    principal: Caller,
    session: SessionDep,
    runtime: RuntimeDep,
    body: dict = Body,
) -> dict[str, Any]:
    clean(body, "body")
    document = await _record(session, principal, dataset_id, record_id)
    text = _text(body, "text", required=False) or document.text or ""
    await _index(
        session, principal, runtime, dataset_id, document.name, text, _record_meta(body, document.meta)
    )
    return {"id": document.id}


@router.post("/{dataset_id}/record/{record_id}/delete")
async def delete_record(
    dataset_id: str, record_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    document = await _record(session, principal, dataset_id, record_id)
    await documents.delete_document(session, principal, dataset_id, document.id, runtime.vectors)
    return {"id": record_id}


# --- files ----------------------------------------------------------------------------------


@router.get("/{dataset_id}/file/list")
async def list_dataset_files(
    dataset_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    query = await files.attached(session, principal, dataset_id)
    items = [file_public(file) for file in await paging.page(session, query, File)]
    return page_response(request, items)


@router.post("/{dataset_id}/file/{file_id}/attach")
async def attach_file(
    dataset_id: str,
    file_id: str,
    principal: Caller,
    session: SessionDep,
    runtime: RuntimeDep,
    body: dict = Body,
) -> dict[str, Any]:
    """Indexes the file's content in the dataset (searchable when this answers)."""
    clean(body, "body")
    kind = body.get("type", "source")
    if kind != "source":
        raise Invalid("type must be 'source'", {"field": "type"})
    await files.attach(
        session, principal, dataset_id, file_id, runtime.jobs, file_limits(runtime), INDEX_WAIT_SECONDS
    )
    return {"id": file_id}


@router.post("/{dataset_id}/file/{file_id}/detach")
async def detach_file(
    dataset_id: str, file_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    await files.detach(session, principal, dataset_id, file_id, runtime.vectors)
    return {"id": file_id}


@router.post("/{dataset_id}/file/{file_id}/sync")
async def sync_dataset_file(
    dataset_id: str, file_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Indexes the attached file's content again (after a new upload)."""
    if not await files.is_attached(session, principal, dataset_id, file_id):
        raise NotFound("the file is not attached to this dataset")
    await files.attach(
        session, principal, dataset_id, file_id, runtime.jobs, file_limits(runtime), INDEX_WAIT_SECONDS
    )
    return {"id": file_id}
