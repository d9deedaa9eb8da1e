"""Bots: create, list, read, change, delete, start and stop; always within one account."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.catalog import TASK_KINDS, ModelChoice, check_choice, check_provider, check_tools
from tertulia.core.errors import Conflict, Invalid
from tertulia.core.knowledge.bases import owned_knowledge_bases
from tertulia.core.paging import Page, count_rows
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.store.tables import Bot, Conversation, Message, ModelSpec, Skillset, utcnow

PLATFORM_TYPES = (
    "web",
    "api",
    "telegram",
    "discord",
    "slack",
    "wechat",
    "whatsapp",
    "qq",
    "dingtalk",
    "feishu",
)


@dataclass
class BotSettings:
    """Everything a bot's owner can set. Field names are the core's, not a face's."""

    name: str
    description: str = ""
    avatar_url: str | None = None
    platform_type: str = "web"
    platform_config: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)
    knowledge_base_ids: list[str] = field(default_factory=list)
    system_prompt: str = ""
    llm_provider: str = "local"
    llm_model: str | None = None
    llm_api_key: str | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    max_input_tokens: int = 3000
    max_reply_tokens: int = 512
    top_k: int = 8
    min_k: float = 0.0
    top_n: int = 4
    min_n: float = 0.0
    no_context_message: str = "I could not find anything about that in my documents."
    no_context_use_message: bool = True
    no_context_llm_guess: bool = False
    llm_generate_related_prompts: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    skillset_id: str | None = None


SETTABLE = frozenset(f.name for f in fields(BotSettings))
# Bots are numbered max + 1; two created at the same instant may race for a number.
NUMBER_ATTEMPTS = 5
MAX_META_BYTES = 16_384
NULLABLE = frozenset({"avatar_url", "llm_model", "llm_api_key", "skillset_id"})
LENGTHS = {"name": 128, "avatar_url": 2048, "llm_model": 256, "llm_api_key": 512}


@dataclass(frozen=True)
class BotFilters:
    search: str | None = None
    platform_type: str | None = None
    is_active: bool | None = None


@dataclass(frozen=True)
class BotActivity:
    bot: Bot
    message_count: int
    last_activity: datetime | None


def _check_values(values: dict[str, Any]) -> None:
    unknown = set(values) - SETTABLE
    if unknown:
        raise Invalid("unknown bot settings", {"unknown": sorted(unknown)})
    for name, value in values.items():
        if value is None and name not in NULLABLE:
            raise Invalid(f"{name} must not be null", {"field": name})
    if "name" in values and not str(values["name"]).strip():
        raise Invalid("name must not be empty", {"field": "name"})
    if "platform_type" in values and values["platform_type"] not in PLATFORM_TYPES:
        raise Invalid(
            f"unknown platform type {values['platform_type']!r}",
            {"field": "platform_type", "allowed": list(PLATFORM_TYPES)},
        )
    if "llm_provider" in values:
        check_provider(values["llm_provider"])
    if "plugins" in values:
        values["plugins"] = check_tools(values["plugins"])
    if not 0 <= values.get("temperature", 0) <= 2:
        raise Invalid("temperature must be between 0 and 2", {"field": "temperature"})
    if not 0 <= values.get("top_p", 1) <= 1:
        raise Invalid("top_p must be between 0 and 1", {"field": "top_p"})
    for name, longest in LENGTHS.items():
        if isinstance(values.get(name), str) and len(values[name]) > longest:
            raise Invalid(f"{name} has at most {longest} characters", {"field": name})
    if "meta" in values and not isinstance(values["meta"], dict):
        raise Invalid("meta must be an object", {"field": "meta"})
    if "meta" in values and len(json.dumps(values["meta"], default=str)) > MAX_META_BYTES:
        raise Invalid(f"meta has at most {MAX_META_BYTES} bytes", {"field": "meta"})
    for name in ("max_input_tokens", "max_reply_tokens", "top_k", "top_n"):
        if name in values and values[name] < 1:
            raise Invalid(f"{name} must be at least 1", {"field": name})


async def _apply(session: AsyncSession, actor: Principal, bot: Bot, values: dict[str, Any]) -> None:
    """Checks everything first, so a refused change leaves the bot untouched."""
    _check_values(values)
    if "knowledge_base_ids" in values:
        bases = await owned_knowledge_bases(session, actor, values["knowledge_base_ids"])
    if values.get("skillset_id") is not None:
        await find_owned(
            session, actor, Skillset, Skillset.id == values["skillset_id"], missing="skillset not found"
        )
    for name, value in values.items():
        if name == "knowledge_base_ids":
            bot.knowledge_bases = bases
        else:
            setattr(bot, name, value)


async def _commit_named(session: AsyncSession, bot: Bot) -> None:
    try:
        await session.commit()
    except IntegrityError as error:  # a concurrent request took the name first
        await session.rollback()
        raise Conflict(f"a bot named {bot.name!r} already exists", {"field": "name"}) from error


async def _name_taken(session: AsyncSession, account_id: str, name: str, other_than: str | None) -> bool:
    query = select(Bot.id).where(Bot.account_id == account_id, Bot.name == name)
    if other_than is not None:
        query = query.where(Bot.id != other_than)
    return await session.scalar(query) is not None


async def create_bot(
    session: AsyncSession, actor: Principal, settings: BotSettings, models: Sequence[ModelChoice] = ()
) -> Bot:
    """A new bot; `models` fill its toolbox (one per task type), all checked before anything
    is stored."""
    actor.require("bots:write")
    actor.require_any_bot()
    values = {f.name: getattr(settings, f.name) for f in fields(BotSettings)}
    if await _name_taken(session, actor.account_id, settings.name, None):
        raise Conflict(f"a bot named {settings.name!r} already exists", {"field": "name"})
    for choice in models:
        check_choice(choice)
    bot = Bot(account_id=actor.account_id, knowledge_bases=[], models=[])
    await _apply(session, actor, bot, values)
    routed = {choice.task_type: choice for choice in models}  # a later entry wins, as set_model does
    bot.models = [
        ModelSpec(
            account_id=actor.account_id,
            task_type=choice.task_type,
            kind=TASK_KINDS[choice.task_type],
            provider=choice.provider,
            model_id=choice.model_id,
        )
        for choice in routed.values()
    ]
    session.add(bot)
    for attempt in range(NUMBER_ATTEMPTS):
        bot.number = (await session.scalar(select(func.max(Bot.number))) or 0) + 1
        try:
            await session.commit()
            return bot
        except IntegrityError as error:  # a concurrent request took the name, or the number
            await session.rollback()
            if await _name_taken(session, actor.account_id, settings.name, None):
                raise Conflict(f"a bot named {settings.name!r} already exists", {"field": "name"}) from error
            if attempt == NUMBER_ATTEMPTS - 1:
                raise
            session.add(bot)
    raise AssertionError("unreachable")


async def get_bot(session: AsyncSession, actor: Principal, bot_id: str) -> Bot:
    actor.require("bots:read")
    return await find_owned(session, actor, Bot, Bot.id == bot_id, missing="bot not found")


async def get_bot_by_name(session: AsyncSession, actor: Principal, name: str) -> Bot:
    actor.require("bots:read")
    return await find_owned(session, actor, Bot, Bot.name == name, missing="bot not found")


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_bots(
    session: AsyncSession, actor: Principal, filters: BotFilters, limit: int, offset: int
) -> Page[Bot]:
    actor.require("bots:read")
    query = owned(actor, Bot)
    if filters.search:
        pattern = _like_pattern(filters.search)
        query = query.where(
            or_(Bot.name.ilike(pattern, escape="\\"), Bot.description.ilike(pattern, escape="\\"))
        )
    if filters.platform_type is not None:
        query = query.where(Bot.platform_type == filters.platform_type)
    if filters.is_active is not None:
        query = query.where(Bot.is_active.is_(filters.is_active))
    total = await count_rows(session, query)
    rows = await session.scalars(query.order_by(Bot.created_at.desc(), Bot.id).limit(limit).offset(offset))
    return Page(list(rows), total, limit, offset)


async def update_bot(
    session: AsyncSession,
    actor: Principal,
    bot_id: str,
    values: dict[str, Any],
    models: Sequence[ModelChoice] = (),
) -> Bot:
    """Changes only the settings present in `values`, and routes the task types of `models`
    to them, all or nothing."""
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    if "name" in values and await _name_taken(session, actor.account_id, values["name"], bot.id):
        raise Conflict(f"a bot named {values['name']!r} already exists", {"field": "name"})
    for choice in models:
        check_choice(choice)
    await _apply(session, actor, bot, dict(values))
    for choice in models:
        spec = next((spec for spec in bot.models if spec.task_type == choice.task_type), None)
        if spec is None:
            spec = ModelSpec(account_id=bot.account_id, task_type=choice.task_type)
            bot.models.append(spec)
        spec.kind, spec.provider, spec.model_id = (
            TASK_KINDS[choice.task_type],
            choice.provider,
            choice.model_id,
        )
    bot.updated_at = utcnow()
    await _commit_named(session, bot)
    return bot


async def delete_bot(session: AsyncSession, actor: Principal, bot_id: str) -> None:
    """Removes the bot with its conversations, messages, toolbox and keys bound to it."""
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    await session.delete(bot)
    await session.commit()


async def set_running(session: AsyncSession, actor: Principal, bot_id: str, running: bool) -> Bot:
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    if bot.is_active != running:
        bot.is_active = running
        bot.started_at = utcnow() if running else None
        await session.commit()
    return bot


async def bot_activity(session: AsyncSession, actor: Principal, bot_id: str) -> BotActivity:
    bot = await get_bot(session, actor, bot_id)
    count, last = (
        await session.execute(
            select(func.count(Message.id), func.max(Message.created_at))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.bot_id == bot.id, Conversation.account_id == actor.account_id)
        )
    ).one()
    return BotActivity(bot, count, last)
