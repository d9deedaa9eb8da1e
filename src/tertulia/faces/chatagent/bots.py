"""ChatAgent /bots: CRUD, list with filters, start, stop and status."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from tertulia.core import bots
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.schemas import (
    BotCreate,
    BotPublic,
    BotsPublic,
    BotStateChanged,
    BotStatus,
    BotSummary,
    BotUpdate,
    Done,
    LlmConfig,
    LlmConfigPublic,
)
from tertulia.faces.deps import SessionDep
from tertulia.store.tables import Bot

router = APIRouter(prefix="/bots", tags=["bots"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
SECRET_HINTS = ("key", "secret", "token", "password")


def _llm_values(config: LlmConfig | None) -> dict[str, Any]:
    """ChatAgent's llm_config → core bot settings (only what the client sent)."""
    if config is None:
        return {}
    sent = config.model_dump(exclude_unset=True)
    renames = {
        "provider": "llm_provider",
        "model": "llm_model",
        "api_key": "llm_api_key",
        "max_tokens": "max_reply_tokens",
        "related_prompts": "llm_generate_related_prompts",
    }
    return {renames.get(name, name): value for name, value in sent.items()}


def masked(value: Any, name: str = "") -> Any:
    """Platform credentials go in, but never come back out, however deeply nested."""
    if isinstance(value, dict):
        return {key: masked(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item, name) for item in value]
    if value and any(hint in name.lower() for hint in SECRET_HINTS):
        return "********"
    return value


def bot_public(bot: Bot) -> BotPublic:
    return BotPublic(
        **BotSummary.model_validate(bot, from_attributes=True).model_dump(),
        user_id=bot.account_id,
        platform_config=masked(bot.platform_config),
        llm_config=LlmConfigPublic(
            provider=bot.llm_provider,
            model=bot.llm_model,
            temperature=bot.temperature,
            top_p=bot.top_p,
            max_tokens=bot.max_reply_tokens,
            system_prompt=bot.system_prompt,
            api_key_set=bool(bot.llm_api_key),
            max_input_tokens=bot.max_input_tokens,
            related_prompts=bot.llm_generate_related_prompts,
        ),
        knowledge_base_ids=[base.id for base in bot.knowledge_bases],
        plugins=list(bot.plugins),
    )


@router.post("/", status_code=status.HTTP_201_CREATED)
@router.post("", status_code=status.HTTP_201_CREATED, include_in_schema=False)
async def create_bot(body: BotCreate, principal: CurrentPrincipal, session: SessionDep) -> BotPublic:
    values = body.model_dump(exclude={"llm_config"}) | _llm_values(body.llm_config)
    bot = await bots.create_bot(session, principal, bots.BotSettings(**values))
    return bot_public(bot)


@router.get("/")
@router.get("", include_in_schema=False)
async def list_bots(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    search: Annotated[str | None, Query(max_length=128)] = None,
    platform_type: Annotated[str | None, Query(max_length=64)] = None,
    is_active: bool | None = None,
) -> BotsPublic:
    page = await bots.list_bots(
        session, principal, bots.BotFilters(search, platform_type, is_active), limit, offset
    )
    return BotsPublic(
        bots=[BotSummary.model_validate(bot, from_attributes=True) for bot in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{bot_id}")
async def get_bot(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> BotPublic:
    return bot_public(await bots.get_bot(session, principal, bot_id))


@router.put("/{bot_id}")
async def update_bot(
    bot_id: str, body: BotUpdate, principal: CurrentPrincipal, session: SessionDep
) -> BotPublic:
    values = body.model_dump(exclude_unset=True, exclude={"llm_config"}) | _llm_values(body.llm_config)
    return bot_public(await bots.update_bot(session, principal, bot_id, values))


@router.delete("/{bot_id}")
async def delete_bot(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await bots.delete_bot(session, principal, bot_id)
    return Done(message="Bot deleted")


@router.post("/{bot_id}/start")
async def start_bot(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> BotStateChanged:
    bot = await bots.set_running(session, principal, bot_id, True)
    return BotStateChanged(message="Bot started", bot_id=bot.id)


@router.post("/{bot_id}/stop")
async def stop_bot(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> BotStateChanged:
    bot = await bots.set_running(session, principal, bot_id, False)
    return BotStateChanged(message="Bot stopped", bot_id=bot.id)


@router.get("/{bot_id}/status")
async def bot_status(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> BotStatus:
    activity = await bots.bot_activity(session, principal, bot_id)
    return BotStatus(
        bot_id=activity.bot.id,
        is_running=activity.bot.is_active,
        is_online=activity.bot.is_active,
        start_time=activity.bot.started_at,
        message_count=activity.message_count,
        error_count=activity.bot.error_count,
        last_activity=activity.last_activity,
    )
