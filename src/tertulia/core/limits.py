"""What a parent account lets one of its sub-accounts have (ChatBotKit's partner user
`limits`): at most so many conversations, datasets, files, records, skillsets and abilities
held at once, and so many messages and model tokens in a calendar month (UTC).

A limit is checked before what it counts is added, and refused with QuotaExceeded (ChatBotKit's
LIMITS_REACHED); an account without limits, or without that one, is not limited. The limits
live on the sub-account; only its parent sets them (core.accounts.update_sub_account).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import Invalid, QuotaExceeded
from tertulia.core.principal import Principal
from tertulia.store.tables import (
    Ability,
    Conversation,
    Document,
    File,
    KnowledgeBase,
    Message,
    Skillset,
    UsageRecord,
    utcnow,
)

HELD = {
    "conversations": Conversation,
    "datasets": KnowledgeBase,
    "files": File,
    "records": Document,
    "skillsets": Skillset,
    "abilities": Ability,
}
MONTHLY = ("messages", "tokens")
NAMES = (*HELD, *MONTHLY)
LARGEST = 10**12


def checked(limits: Any, field: str = "limits") -> dict[str, int]:
    """`{name: count}` for names in NAMES, each a whole number from 0; a null drops a limit."""
    if not isinstance(limits, dict):
        raise Invalid(f"{field} must be an object", {"field": field})
    unknown = set(limits) - set(NAMES)
    if unknown:
        raise Invalid(f"{field} has unknown limits", {"field": field, "unknown": sorted(unknown)})
    kept: dict[str, int] = {}
    for name, value in limits.items():
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= LARGEST:
            raise Invalid(f"{field}.{name} must be a whole number from 0", {"field": f"{field}.{name}"})
        kept[name] = value
    return kept


def _month_start() -> datetime:
    return utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def used(session: AsyncSession, account_id: str, name: str) -> int:
    """How much of `name` the account holds now, or has spent this month."""
    if name in HELD:
        table = HELD[name]
        return int(await session.scalar(select(func.count()).where(table.account_id == account_id)) or 0)
    since = _month_start()
    if name == "messages":
        query = select(func.count()).where(Message.account_id == account_id, Message.created_at >= since)
    else:
        query = select(
            func.coalesce(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0)
        ).where(UsageRecord.account_id == account_id, UsageRecord.created_at >= since)
    return int(await session.scalar(query) or 0)


async def require_room(session: AsyncSession, actor: Principal, name: str, adding: int = 1) -> None:
    """Refuses adding `adding` more of `name` past the account's limit (for tokens, once the
    month's are spent: a reply's size is not known before it is made)."""
    limit = (actor.account.limits or {}).get(name)
    if limit is None:
        return
    spent = await used(session, actor.account_id, name)
    if spent + (adding if name != "tokens" else 1) > limit:
        period = " this month" if name in MONTHLY else ""
        raise QuotaExceeded(
            f"this account may have at most {limit} {name}{period}",
            {"limit": limit, "used": spent, "resource": name},
        )
