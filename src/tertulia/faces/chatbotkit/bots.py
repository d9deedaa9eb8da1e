"""ChatBotKit bots: list, fetch, create, update, delete. A bot's `backstory` is its system
prompt, `model` its chat model, `datasetId` the knowledge base it answers from."""

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import bots
from tertulia.core.accounts import Principal
from tertulia.core.catalog import PROVIDERS
from tertulia.core.errors import Invalid
from tertulia.core.models import chat_choice
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.common import (
    Caller,
    Paging,
    given_meta,
    merged_meta,
    ms,
    page_response,
)
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.runtime import Runtime
from tertulia.store.tables import Bot

router = APIRouter(prefix="/bot", tags=["chatbotkit"])

TEXT_FIELDS = {"name": 128, "description": 4000, "backstory": 32_000}


def bot_public(bot: Bot) -> dict[str, Any]:
    linked = [base.id for base in bot.knowledge_bases]
    body: dict[str, Any] = {
        "id": bot.id,
        "createdAt": ms(bot.created_at),
        "updatedAt": ms(bot.updated_at),
        "name": bot.name,
        "description": bot.description,
        "backstory": bot.system_prompt,
        "meta": bot.meta or {},
    }
    if bot.llm_model:  # as it was given: a bare name reads back bare (openai-compatible's prefixed)
        prefixed = bot.llm_provider == "openai-compatible"
        body["model"] = f"{bot.llm_provider}/{bot.llm_model}" if prefixed else bot.llm_model
    if linked:
        body["datasetId"] = linked[0]
    if bot.skillset_id:
        body["skillsetId"] = bot.skillset_id
    return body


def _model_options(model: str) -> tuple[str, dict[str, str]]:
    """`gpt-4o/temperature=0.7/…` (the Node SDK's model with its config) → the model and its
    options; `provider/model` stays whole."""
    name, *rest = model.split("/")
    if name in PROVIDERS and rest and "=" not in rest[0]:
        name, rest = f"{name}/{rest[0]}", rest[1:]
    options = dict(part.split("=", 1) for part in rest if "=" in part)
    return name, options


def _values(body: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """ChatBotKit's fields → the core's bot settings (only those sent)."""
    clean(body, "body")
    values: dict[str, Any] = {}
    for name, longest in TEXT_FIELDS.items():
        if name in body and body[name] is not None:
            if not isinstance(body[name], str) or len(body[name]) > longest:
                raise Invalid(f"{name} must be text of at most {longest} characters", {"field": name})
            values["system_prompt" if name == "backstory" else name] = body[name]
    if body.get("model"):
        if not isinstance(body["model"], str):
            raise Invalid("model must be a model name", {"field": "model"})
        name, options = _model_options(body["model"])
        choice = chat_choice(name, runtime.models.local_models())
        values["llm_provider"], values["llm_model"] = choice.provider, choice.model_id
        if "temperature" in options:
            try:
                values["temperature"] = float(options["temperature"])
            except ValueError as error:
                raise Invalid("the model's temperature must be a number", {"field": "model"}) from error
    if "datasetId" in body:
        dataset = body["datasetId"]
        if dataset is not None and not isinstance(dataset, str):
            raise Invalid("datasetId must be a dataset id", {"field": "datasetId"})
        values["knowledge_base_ids"] = [dataset] if dataset else []
    if "skillsetId" in body:
        if body["skillsetId"] is not None and not isinstance(body["skillsetId"], str):
            raise Invalid("skillsetId must be a skillset id", {"field": "skillsetId"})
        values["skillset_id"] = body["skillsetId"] or None
    return values


async def _body(request: Request) -> dict[str, Any]:
    if not await request.body():
        return {}
    try:
        body = await request.json()
    except ValueError as error:
        raise Invalid("the body is not valid JSON") from error
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return body


Body = Depends(_body)


@router.get("/list")
async def list_bots(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("bots:read")
    rows = await paging.page(session, owned(principal, Bot), Bot)
    return page_response(request, [bot_public(bot) for bot in rows])


@router.get("/{bot_id}/fetch")
async def fetch_bot(bot_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return bot_public(await bots.get_bot(session, principal, bot_id))


@router.post("/create")
async def create_bot(
    principal: Caller, session: SessionDep, runtime: RuntimeDep, body: dict = Body
) -> dict[str, Any]:
    values = _values(body, runtime)
    values.setdefault("name", f"Bot {secrets.token_hex(3)}")  # ChatBotKit's names are optional
    meta = given_meta(body)
    bot = await bots.create_bot(
        session, principal, bots.BotSettings(platform_type="api", meta=meta, **values)
    )
    return {"id": bot.id}


@router.post("/{bot_id}/update")
async def update_bot(
    bot_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep, body: dict = Body
) -> dict[str, Any]:
    bot = await bots.get_bot(session, principal, bot_id)
    values = _values(body, runtime)
    meta = merged_meta(bot.meta or {}, body)
    if meta is not None:
        values["meta"] = meta
    await bots.update_bot(session, principal, bot.id, values)
    return {"id": bot.id}


@router.post("/{bot_id}/delete")
async def delete_bot(bot_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    await bots.delete_bot(session, principal, bot_id)
    return {"id": bot_id}


async def reachable_bot(session: AsyncSession, principal: Principal, bot_id: Any) -> Bot:
    if not isinstance(bot_id, str) or not bot_id:
        raise Invalid("botId must be a bot id", {"field": "botId"})
    return await bots.get_bot(session, principal, bot_id)
