"""Embedding texts on a caller's behalf (the OpenAI face's /v1/embeddings), with the same
model routing, quota and usage accounting as chat."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.bots import get_bot
from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import Invalid
from tertulia.core.models import Resolved, account_default, credentials_for, resolve, resolve_for_account
from tertulia.core.principal import Principal
from tertulia.core.usage import record_usage, require_quota
from tertulia.providers.base import Credentials, Usage
from tertulia.providers.registry import ModelRegistry
from tertulia.store.session import Database

MAX_INPUTS = 2048
MAX_INPUT_CHARS = 32_000


@dataclass(frozen=True)
class Embedded:
    vectors: list[list[float]]
    model: str
    usage: Usage


async def _resolve(
    session: AsyncSession, actor: Principal, bot_id: str | None, model: ModelChoice | None
) -> Resolved:
    if bot_id is not None:
        return await resolve(session, await get_bot(session, actor, bot_id), "embedding")
    if model is not None:
        return await resolve_for_account(session, actor, model)
    choice = await account_default(session, actor.account_id, "embedding")
    if choice is None:
        return Resolved(None, Credentials())
    return Resolved(choice, await credentials_for(session, actor.account_id, choice.provider))


async def embed_texts(
    database: Database,
    models: ModelRegistry,
    actor: Principal,
    texts: Sequence[str],
    *,
    quota: int | None,
    purpose: Literal["query", "passage"] = "passage",
    bot_id: str | None = None,
    model: ModelChoice | None = None,
) -> Embedded:
    """Vectors for `texts` from a bot's embedding model, a named model, or the default."""
    actor.require("models:read")
    if not texts:
        raise Invalid("nothing to embed", {"field": "input"})
    if len(texts) > MAX_INPUTS:
        raise Invalid(f"at most {MAX_INPUTS} inputs at once", {"field": "input"})
    for index, text in enumerate(texts):
        if not text.strip():
            raise Invalid("an input is empty", {"field": f"input.{index}"})
        if len(text) > MAX_INPUT_CHARS:
            raise Invalid(
                f"an input is longer than {MAX_INPUT_CHARS} characters", {"field": f"input.{index}"}
            )
    async with database.session() as session:
        await require_quota(session, actor.account_id, quota)
        await limits.require_room(session, actor, "tokens")
        resolved = await _resolve(session, actor, bot_id, model)
    choice = resolved.choice or models.default_embedding
    embedder = models.embedder(resolved.choice, resolved.credentials)
    vectors = await embedder.embed(texts, purpose)
    usage = Usage(await embedder.count_tokens(texts), 0)
    async with database.session() as session:
        record_usage(
            session,
            actor.account_id,
            usage,
            provider=choice.provider,
            model=embedder.model_id,
            task_type="embedding",
            bot_id=bot_id,
        )
        await session.commit()
    return Embedded(vectors, embedder.model_id, usage)
