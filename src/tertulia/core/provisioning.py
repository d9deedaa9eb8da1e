"""A bot set up in one go: its toolbox, its own knowledge base's embedder and a key of its own
(CriaBot's /manage/create). Either all of it exists afterwards or none of it does."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import accounts, bots
from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import Invalid
from tertulia.core.knowledge.documents import bot_knowledge_base
from tertulia.core.principal import Principal
from tertulia.store.tables import Bot, Document


@dataclass(frozen=True)
class Provisioned:
    bot: Bot
    api_key: str


def embedding_name(choice: ModelChoice) -> str:
    """How a knowledge base names an embedding model: `provider/model`."""
    return f"{choice.provider}/{choice.model_id}"


async def provision_bot(
    session: AsyncSession,
    actor: Principal,
    settings: bots.BotSettings,
    models: Sequence[ModelChoice],
    embedding: ModelChoice | None,
) -> Provisioned:
    """Creates the bot with its toolbox, its own knowledge base (embedding with `embedding`)
    and an API key bound to it; undoes the bot if a later step fails."""
    bot = await bots.create_bot(session, actor, settings, models)
    try:
        await bot_knowledge_base(session, actor, bot.id, embedding_name(embedding) if embedding else None)
        issued = await accounts.create_api_key(session, actor, f"{bot.name} (bot key)", bot_id=bot.id)
    except Exception:
        await session.rollback()
        await bots.delete_bot(session, actor, bot.id)
        raise
    return Provisioned(bot, issued.secret)


async def change_embedding(
    session: AsyncSession, actor: Principal, bot_id: str, embedding: ModelChoice
) -> None:
    """Points the bot's own knowledge base at another embedder, while it holds no documents
    (vectors of two embedders cannot be searched together)."""
    base = await bot_knowledge_base(session, actor, bot_id)
    wanted = embedding_name(embedding)
    if base.embedding_model == wanted:
        return
    holds = await session.scalar(select(Document.id).where(Document.knowledge_base_id == base.id).limit(1))
    if holds is not None:
        raise Invalid(
            "the bot's documents are indexed with another embedding model: delete them before changing it",
            {"field": "embedding_model_id"},
        )
    base.embedding_model = wanted
    await session.commit()
