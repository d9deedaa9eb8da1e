"""Token accounting: what every model call used, summed per account and bot, and the
daily token quota each plan allows."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import QuotaExceeded
from tertulia.core.monitoring import instruments
from tertulia.core.principal import Principal
from tertulia.providers.base import Usage
from tertulia.store.tables import UsageRecord, utcnow

QUOTA_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Spent:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class UsageReport:
    since: datetime
    until: datetime
    total: Spent
    by_bot: dict[str | None, Spent]


@dataclass(frozen=True)
class Quota:
    """A plan's tokens per rolling 24 hours; `limit` None means unlimited."""

    limit: int | None
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def record_usage(
    session: AsyncSession,
    account_id: str,
    usage: Usage,
    *,
    provider: str,
    model: str,
    task_type: str = "chat",
    bot_id: str | None = None,
    conversation_id: str | None = None,
    message_id: str | None = None,
) -> UsageRecord:
    """Adds the record to the caller's transaction (written with the reply, or not at all)."""
    row = UsageRecord(
        account_id=account_id,
        bot_id=bot_id,
        conversation_id=conversation_id,
        message_id=message_id,
        task_type=task_type,
        provider=provider,
        model=model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
    session.add(row)
    # Counted as spent even if the caller's transaction is rolled back: the model did the work.
    tokens = instruments.MODEL_TOKENS
    tokens.labels(provider, model, task_type, "prompt").inc(usage.prompt_tokens)
    tokens.labels(provider, model, task_type, "completion").inc(usage.completion_tokens)
    return row


def _spent_columns():  # type: ignore[no-untyped-def]
    return (
        func.coalesce(func.sum(UsageRecord.prompt_tokens), 0),
        func.coalesce(func.sum(UsageRecord.completion_tokens), 0),
        func.count(UsageRecord.id),
    )


async def usage_report(
    session: AsyncSession,
    actor: Principal,
    since: datetime | None = None,
    until: datetime | None = None,
    bot_id: str | None = None,
) -> UsageReport:
    actor.require("usage:read")
    until = until or utcnow()
    since = since or until - timedelta(days=30)
    where = [
        UsageRecord.account_id == actor.account_id,
        UsageRecord.created_at >= since,
        UsageRecord.created_at < until,
    ]
    if actor.bot_id is not None:
        bot_id = actor.bot_id if bot_id in (None, actor.bot_id) else "-"  # another bot: nothing
    if bot_id is not None:
        where.append(UsageRecord.bot_id == bot_id)
    rows = await session.execute(
        select(UsageRecord.bot_id, *_spent_columns()).where(*where).group_by(UsageRecord.bot_id)
    )
    by_bot = {row[0]: Spent(int(row[1]), int(row[2]), int(row[3])) for row in rows}
    total = Spent(
        sum(spent.prompt_tokens for spent in by_bot.values()),
        sum(spent.completion_tokens for spent in by_bot.values()),
        sum(spent.calls for spent in by_bot.values()),
    )
    return UsageReport(since, until, total, by_bot)


async def quota(session: AsyncSession, account_id: str, limit: int | None) -> Quota:
    if limit is None:
        return Quota(None, 0)
    prompt, completion, _calls = (
        await session.execute(
            select(*_spent_columns()).where(
                UsageRecord.account_id == account_id, UsageRecord.created_at >= utcnow() - QUOTA_WINDOW
            )
        )
    ).one()
    return Quota(limit, int(prompt) + int(completion))


async def require_quota(session: AsyncSession, account_id: str, limit: int | None) -> Quota:
    """Refuses a model call once the account's plan has spent its tokens for the last 24 hours."""
    state = await quota(session, account_id, limit)
    if state.remaining == 0:
        raise QuotaExceeded(
            "this account has used its tokens for the last 24 hours",
            {"limit": state.limit, "used": state.used, "window_hours": 24},
        )
    return state
