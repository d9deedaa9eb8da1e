"""ChatBotKit's usage: what the account holds and has spent."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from tertulia.core import usage
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.common import Caller
from tertulia.faces.deps import SessionDep
from tertulia.store.tables import Conversation, Document, KnowledgeBase, Message

router = APIRouter(prefix="/usage", tags=["chatbotkit"])


@router.get("/fetch")
async def fetch_usage(principal: Caller, session: SessionDep) -> dict[str, Any]:
    async def count(model: Any) -> int:
        query = owned(principal, model)  # with a bot-bound key: that bot's rows only
        return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    report = await usage.usage_report(session, principal)  # the last 30 days
    spent = report.total.prompt_tokens + report.total.completion_tokens
    return {
        "conversations": await count(Conversation),
        "messages": int(
            await session.scalar(
                select(func.count(Message.id)).where(
                    Message.conversation_id.in_(
                        owned(principal, Conversation).with_only_columns(Conversation.id)
                    )
                )
            )
            or 0
        ),
        "tokens": spent,
        "database": {
            "abilities": 0,
            "datasets": await count(KnowledgeBase),
            "files": 0,
            "records": await count(Document),
            "skillsets": 0,
            "users": 0,
        },
    }
