"""A bot's toolbox: which model serves each task type (chat, embedding, rerank …)."""

from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.bots import get_bot, update_bot
from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import NotFound
from tertulia.core.principal import Principal
from tertulia.store.tables import ModelSpec


async def set_model(session: AsyncSession, actor: Principal, bot_id: str, choice: ModelChoice) -> ModelSpec:
    """Routes `choice.task_type` for this bot to a model; replaces an earlier route for it."""
    bot = await update_bot(session, actor, bot_id, {}, models=[choice])
    return next(spec for spec in bot.models if spec.task_type == choice.task_type)


async def list_models(session: AsyncSession, actor: Principal, bot_id: str) -> list[ModelSpec]:
    actor.require("bots:read")
    bot = await get_bot(session, actor, bot_id)
    return list(bot.models)


async def remove_model(session: AsyncSession, actor: Principal, bot_id: str, task_type: str) -> None:
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    spec = next((spec for spec in bot.models if spec.task_type == task_type), None)
    if spec is None:
        raise NotFound(f"this bot has no model for task type {task_type!r}")
    bot.models.remove(spec)  # the orphan is deleted, and the bot loaded here forgets it too
    await session.commit()
