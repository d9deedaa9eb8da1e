"""Knowledge bases: named collections of documents with their indexing settings."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.knowledge.chunking import STRATEGIES
from tertulia.core.models import check_embedding_model
from tertulia.core.paging import Page, count_rows
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.store.tables import KnowledgeBase, utcnow

if TYPE_CHECKING:
    from tertulia.core.knowledge.vectors import VectorIndex
    from tertulia.providers.registry import ModelRegistry


@dataclass(frozen=True)
class KnowledgeBaseDraft:
    name: str
    description: str = ""
    embedding_model: str | None = None
    chunk_size: int = 1000
    chunk_overlap: int = 200
    chunking_strategy: str = "structured"
    vector_store_type: str = "builtin"
    metadata: dict[str, Any] = field(default_factory=dict)


def _check(draft: KnowledgeBaseDraft) -> None:
    if not draft.name.strip() or len(draft.name) > 128:
        raise Invalid("a name has 1 to 128 characters", {"field": "name"})
    if draft.chunk_size < 1 or draft.chunk_overlap < 0:
        raise Invalid("chunk_size must be positive and chunk_overlap not negative", {"field": "chunk_size"})
    if draft.chunk_overlap >= draft.chunk_size:
        raise Invalid("chunk_overlap must be smaller than chunk_size", {"field": "chunk_overlap"})
    if draft.chunking_strategy not in STRATEGIES:
        raise Invalid(
            f"unknown chunking strategy {draft.chunking_strategy!r}",
            {"field": "chunking_strategy", "allowed": list(STRATEGIES)},
        )


async def create_knowledge_base(
    session: AsyncSession,
    actor: Principal,
    draft: KnowledgeBaseDraft,
    models: "ModelRegistry",
    vectors: "VectorIndex",
) -> KnowledgeBase:
    actor.require("knowledge:write")
    actor.require_any_bot()
    _check(draft)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    await vectors.check_store_type(draft.vector_store_type, dialect)
    await check_embedding_model(session, actor, draft.embedding_model, models)
    await limits.require_room(session, actor, "datasets")
    base = KnowledgeBase(
        account_id=actor.account_id,
        name=draft.name,
        description=draft.description,
        embedding_model=draft.embedding_model,
        chunk_size=draft.chunk_size,
        chunk_overlap=draft.chunk_overlap,
        chunking_strategy=draft.chunking_strategy,
        vector_store_type=draft.vector_store_type,
        meta=draft.metadata,
    )
    session.add(base)
    await session.commit()
    return base


async def get_knowledge_base(session: AsyncSession, actor: Principal, base_id: str) -> KnowledgeBase:
    actor.require("knowledge:read")
    return await find_owned(
        session, actor, KnowledgeBase, KnowledgeBase.id == base_id, missing="knowledge base not found"
    )


async def list_knowledge_bases(
    session: AsyncSession, actor: Principal, limit: int, offset: int, *, bots_own: bool = True
) -> Page[KnowledgeBase]:
    """A page of the caller's bases; without the bases bots made for their own documents
    (core.knowledge.documents.bot_knowledge_base) when `bots_own` is False."""
    actor.require("knowledge:read")
    query = owned(actor, KnowledgeBase)
    if not bots_own:
        query = query.where(KnowledgeBase.owner_bot_id.is_(None))
    total = await count_rows(session, query)
    rows = await session.scalars(
        query.order_by(KnowledgeBase.created_at.desc(), KnowledgeBase.id).limit(limit).offset(offset)
    )
    return Page(list(rows), total, limit, offset)


async def owned_knowledge_bases(
    session: AsyncSession, actor: Principal, base_ids: list[str]
) -> list[KnowledgeBase]:
    """The bases with these ids, all of which must belong to the caller's account."""
    wanted = list(dict.fromkeys(base_ids))
    if not wanted:
        return []
    rows = await session.scalars(owned(actor, KnowledgeBase).where(KnowledgeBase.id.in_(wanted)))
    found = {base.id: base for base in rows}
    missing = [base_id for base_id in wanted if base_id not in found]
    if missing:
        raise NotFound("knowledge base not found", {"field": "knowledge_base_ids", "missing": missing})
    return [found[base_id] for base_id in wanted]


async def update_knowledge_base(
    session: AsyncSession, actor: Principal, base_id: str, changes: dict[str, Any]
) -> KnowledgeBase:
    """Changes a base's `name`, `description` and `metadata` (its indexing settings are fixed
    once documents are indexed with them)."""
    actor.require("knowledge:write")
    unknown = set(changes) - {"name", "description", "metadata"}
    if unknown:
        raise Invalid("unknown knowledge base fields", {"unknown": sorted(unknown)})
    base = await get_knowledge_base(session, actor, base_id)
    name = changes.get("name", base.name)
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise Invalid("a name has 1 to 128 characters", {"field": "name"})
    base.name = name
    if "description" in changes:
        base.description = str(changes["description"])
    if "metadata" in changes:
        base.meta = dict(changes["metadata"])
    base.updated_at = utcnow()
    await session.commit()
    return base


async def delete_knowledge_base(
    session: AsyncSession, actor: Principal, base_id: str, vectors: "VectorIndex"
) -> None:
    """Removes the base with its documents, chunks and vectors."""
    actor.require("knowledge:write")
    actor.require_any_bot()
    base = await get_knowledge_base(session, actor, base_id)
    await vectors.remove_base(base)
    await session.delete(base)
    await session.commit()
