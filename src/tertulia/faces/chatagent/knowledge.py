"""ChatAgent /knowledge/bases: knowledge base settings (documents and search come later)."""

from fastapi import APIRouter, status

from tertulia.core.knowledge import bases
from tertulia.faces.chatagent.bots import Limit, Offset
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.schemas import (
    Done,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
)
from tertulia.faces.deps import SessionDep
from tertulia.store.tables import KnowledgeBase

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
        metadata=base.meta,
        created_at=base.created_at,
        updated_at=base.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_knowledge_base(
    body: KnowledgeBaseCreate, principal: CurrentPrincipal, session: SessionDep
) -> KnowledgeBasePublic:
    base = await bases.create_knowledge_base(
        session, principal, bases.KnowledgeBaseDraft(**body.model_dump())
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
async def delete_knowledge_base(base_id: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await bases.delete_knowledge_base(session, principal, base_id)
    return Done(message="Knowledge base deleted")
