"""ChatBotKit's usage: what the account holds and has spent."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from tertulia.core import usage
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.common import Caller
from tertulia.faces.deps import SessionDep
from tertulia.store.tables import (
    Ability,
    Account,
    Conversation,
    Document,
    File,
    KnowledgeBase,
    Message,
    Skillset,
)

router = APIRouter(prefix="/usage", tags=["chatbotkit"])


@router.get("/fetch")
async def fetch_usage(principal: Caller, session: SessionDep) -> dict[str, Any]:
    async def count(model: Any) -> int:
        query = owned(principal, model)  # with a bot-bound key: that bot's rows only
        return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    async def count_account(model: Any) -> int:
        """Rows that belong to no bot: none of them for a bot-bound key."""
        return 0 if principal.bot_id is not None else await count(model)

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
            "abilities": await count_account(Ability),
            "datasets": await count(KnowledgeBase),
            "files": await count_account(File),
            "records": await count(Document),
            "skillsets": await count_account(Skillset),
            "users": int(
                await session.scalar(
                    select(func.count(Account.id)).where(Account.parent_id == principal.account_id)
                )
                or 0
            ),
        },
    }
