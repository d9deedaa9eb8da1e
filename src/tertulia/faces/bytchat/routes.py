"""The Bytchat face (bytchat-api.txt): users, OAuth2 password login, bots with a model
toolbox, training from .txt files in the background, and a streamed plain-text chat.

A thin translator: every rule lives in core. A Bytchat bot is a core bot; what it is trained
on lives in its own knowledge base, so the ChatAgent face shows the same bot and knowledge.
"""

from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import StreamingResponse

from tertulia.core import accounts, bots, toolbox
from tertulia.core.catalog import ModelChoice
from tertulia.core.chat import ChatEvent, Completion, Done, Failed, Token
from tertulia.core.errors import Invalid
from tertulia.core.knowledge import documents
from tertulia.faces.bytchat.schemas import (
    BotCreate,
    BotPublic,
    BotUpdate,
    ModelConfig,
    ModelConfigPublic,
    Training,
    UserCreate,
    UserPublic,
    Welcome,
)
from tertulia.faces.bytchat.schemas import (
    Token as TokenBody,
)
from tertulia.faces.deps import AnonymousLimit, BearerPrincipal, RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.providers.base import ChatTurn
from tertulia.store.tables import Bot, ModelSpec

router = APIRouter(tags=["bytchat"])

MAX_QUERY_CHARS = 8000


def _model_public(spec: ModelSpec) -> ModelConfigPublic:
    return ModelConfigPublic(
        id=spec.id,
        bot_id=spec.bot_id,
        task_type=spec.task_type,
        provider=spec.provider,
        model_id=spec.model_id,
    )


def _bot_public(bot: Bot) -> BotPublic:
    return BotPublic(
        id=bot.id,
        owner_id=bot.account_id,
        name=bot.name,
        description=bot.description,
        system_prompt=bot.system_prompt,
        models=[_model_public(spec) for spec in bot.models],
        created_at=bot.created_at,
    )


@router.get("/")
async def welcome(runtime: RuntimeDep) -> Welcome:
    return Welcome(message="Welcome to the Bytchat API of Tertulia", version=runtime.version)


@router.post("/users/", dependencies=[AnonymousLimit])
async def create_user(body: UserCreate, session: SessionDep, runtime: RuntimeDep) -> UserPublic:
    account = await accounts.register(
        session,
        accounts.NewAccount(
            email=str(body.email), password=body.password, plan=runtime.settings.default_plan
        ),
    )
    return UserPublic(id=account.id, email=account.email, is_active=account.is_active)


@router.post("/token", dependencies=[AnonymousLimit])
async def login(
    username: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=256)],
    session: SessionDep,
    runtime: RuntimeDep,
) -> TokenBody:
    """OAuth2's password flow: `username` is the email address."""
    account = await accounts.authenticate_password(session, clean(username, "username"), password)
    issued = accounts.issue_access_token(account, runtime.secret, runtime.settings.access_token_ttl_seconds)
    return TokenBody(access_token=issued.token, token_type="bearer")


@router.post("/bots/")
async def create_bot(body: BotCreate, principal: BearerPrincipal, session: SessionDep) -> BotPublic:
    settings = bots.BotSettings(
        name=body.name, description=body.description, system_prompt=body.system_prompt
    )
    routed = [ModelChoice(item.provider, item.model_id, item.task_type) for item in body.initial_configs]
    return _bot_public(await bots.create_bot(session, principal, settings, routed))


@router.get("/bots/")
async def list_bots(
    principal: BearerPrincipal,
    session: SessionDep,
    skip: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> list[BotPublic]:
    page = await bots.list_bots(session, principal, bots.BotFilters(), limit, skip)
    return [_bot_public(bot) for bot in page.items]


@router.put("/bots/{bot_id}")
async def update_bot(
    bot_id: str, body: BotUpdate, principal: BearerPrincipal, session: SessionDep
) -> BotPublic:
    values = body.model_dump(exclude_unset=True, exclude_none=True)
    if not values:
        raise Invalid("nothing to change: send system_prompt, name or description", {"field": "body"})
    return _bot_public(await bots.update_bot(session, principal, bot_id, values))


@router.post("/bots/{bot_id}/models/")
async def add_model(
    bot_id: str, body: ModelConfig, principal: BearerPrincipal, session: SessionDep
) -> ModelConfigPublic:
    choice = ModelChoice(body.provider, body.model_id, body.task_type)
    return _model_public(await toolbox.set_model(session, principal, bot_id, choice))


@router.post("/bots/{bot_id}/train", status_code=status.HTTP_202_ACCEPTED)
async def train(
    bot_id: str,
    principal: BearerPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="A plain-text (.txt) document")],
) -> Training:
    """Queues a .txt file into the bot's own knowledge base; the job runs in the background
    (its progress: GET /api/v1/jobs/{job_id})."""
    name = PurePath(clean(file.filename or "", "file")).name
    if PurePath(name).suffix.lower() != ".txt":
        raise Invalid("only plain-text .txt files can be used for training", {"field": "file"})
    data = await file.read(runtime.settings.max_upload_bytes + 1)
    accepted = await documents.add_bot_document(
        session,
        principal,
        bot_id,
        documents.Upload("file", name, data, "text/plain"),
        runtime.jobs,
        max_bytes=runtime.settings.max_upload_bytes,
        max_unpacked_bytes=runtime.settings.max_unpacked_bytes,
    )
    return Training(
        message="Training started: the document is processed in the background",
        bot_id=bot_id,
        filename=name,
        job_id=accepted.job.id,
        status=accepted.job.status,
    )


@router.post("/chat/{bot_id}")
async def chat(
    bot_id: str,
    query: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
    principal: BearerPrincipal,
    runtime: RuntimeDep,
) -> StreamingResponse:
    """The answer as plain text, streamed in chunks as the model writes it, grounded in what
    the bot was trained on. A failure before the first word is an error response."""
    request = Completion(turns=[ChatTurn("user", query)], bot_id=bot_id)
    events = runtime.chat.complete(principal, request)
    first = await _first_text(events)
    return StreamingResponse(_text(first, events), media_type="text/plain; charset=utf-8")


async def _first_text(events: AsyncIterator[ChatEvent]) -> str:
    """Reads up to the first words; raises what failed before any."""
    async for event in events:
        if isinstance(event, Failed):
            await events.aclose()  # type: ignore[attr-defined]
            raise event.error
        if isinstance(event, Token):
            return event.text
        if isinstance(event, Done):
            return event.text
    return ""


async def _text(first: str, events: AsyncIterator[ChatEvent]) -> AsyncIterator[str]:
    if first:
        yield first
    async with aclosing(events) as stream:  # type: ignore[type-var]
        async for event in stream:
            if isinstance(event, Token) and event.text:
                yield event.text
            elif isinstance(event, Failed):
                # Mid-stream, the status is already sent: the text ends with the reason.
                yield f"\n[error: {event.error.message}]"
                return
