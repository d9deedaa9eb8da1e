"""The web widget's API (/api/v1/widget/{bot_id}/…) and a bot's widget settings and keys
(/api/v1/bots/{bot_id}/widget…), in ChatAgent's envelope. The contract is docs/web-channel.md.

A browser reaches the widget paths only from the bot's allowed origins: `WidgetCors` answers
their preflights and marks their responses; `allowed_origin` refuses any other origin.
Streams open their own short database sessions: a visitor's live stream may last hours and
must not hold a connection of the pool while it waits.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tertulia.core import handoff, widget
from tertulia.core.accounts import issue_visitor_token
from tertulia.core.chat import ChatEvent, Done, Failed, Held, Question, Sources, Token
from tertulia.core.conversation_events import MessageAdded, StatusChanged
from tertulia.core.conversations import get_conversation, list_messages
from tertulia.core.errors import Forbidden, TertuliaError
from tertulia.core.knowledge.retrieval import Source
from tertulia.core.principal import Principal
from tertulia.faces.chatagent.conversations import FROM_CORE_STATUS
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.errors import CODES
from tertulia.faces.deps import RuntimeDep, SessionDep, admit, bearer
from tertulia.faces.inputs import RequestModel
from tertulia.runtime import Runtime
from tertulia.store.tables import ApiKey, Conversation
from tertulia.store.tables import Message as StoredMessage

router = APIRouter(prefix="/widget/{bot_id}", tags=["widget"])
settings_router = APIRouter(prefix="/bots/{bot_id}/widget", tags=["widget"])

WIDGET_PREFIX = "/api/v1/widget/"
PING_SECONDS = 15.0
SNIPPET_CHARACTERS = 300
HISTORY_LIMIT = 200


# --- origins -------------------------------------------------------------------------------


def _bot_of(path: str) -> str | None:
    if not path.startswith(WIDGET_PREFIX):
        return None
    return path[len(WIDGET_PREFIX) :].split("/", 1)[0] or None


class WidgetCors:
    """CORS for the widget paths, per bot: a preflight from one of the bot's allowed origins
    is answered 204, any other 403; the responses to an allowed origin carry its
    Access-Control-Allow-Origin (in place of any the server-wide CORS setting added)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bot_id = _bot_of(scope.get("path", "")) if scope["type"] == "http" else None
        origin = _header(scope, b"origin")
        if bot_id is None or origin is None:
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        async with runtime.database.session() as session:
            origins = await widget.allowed_origins_of(session, bot_id)
        allowed = origins is not None and widget.origin_allowed({"allowed_origins": origins}, origin)
        cors = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", b"X-Request-ID, Retry-After, X-RateLimit-Remaining"),
        ]
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            status_code = 204 if allowed else 403
            headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
            if allowed:
                headers += [
                    *cors,
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", b"Authorization, Content-Type"),
                    (b"access-control-max-age", b"600"),
                ]
            await send({"type": "http.response.start", "status": status_code, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if not allowed:  # the route refuses it in its own envelope (allowed_origin)
            await self.app(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The bot's origins decide here, not the server-wide CORS setting.
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": [*kept, *cors]}
            await send(message)

        await self.app(scope, receive, with_cors)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


async def allowed_origin(request: Request, bot_id: str, session: SessionDep) -> None:
    """Refuses a browser on an origin the bot does not list (a request without an Origin is
    not a browser's cross-site call: the key and the visitor token still apply)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    origins = await widget.allowed_origins_of(session, bot_id)
    if origins is None or not widget.origin_allowed({"allowed_origins": origins}, origin):
        raise Forbidden(
            "this page's origin may not use this bot's widget; add it to the bot's widget allowed_origins",
            {"origin": origin},
        )


OriginChecked = Depends(allowed_origin)


# --- callers -------------------------------------------------------------------------------


async def widget_caller(
    request: Request,
    bot_id: str,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """A widget key or a visitor token of this bot (their routes keep them on these paths)."""
    principal = await admit(request, runtime, session, credentials.credentials if credentials else None)
    if principal.bot_id != bot_id or principal.routes is None:
        raise Forbidden("the widget's paths take a widget key or a visitor token of this bot")
    return principal


WidgetCaller = Annotated[Principal, Depends(widget_caller)]


async def visitor(caller: WidgetCaller, runtime: RuntimeDep) -> Principal:
    if caller.visitor_id is None:
        raise Forbidden("this path takes a visitor token (POST /visitors makes one)")
    assert caller.bot_id is not None
    await runtime.rate_limiter.hit_visitor(caller.bot_id, caller.visitor_id)
    return caller


Visitor = Annotated[Principal, Depends(visitor)]


# --- shapes --------------------------------------------------------------------------------


class ConversationView(BaseModel):
    id: str
    status: str
    human_requested: bool
    operator: str | None
    created_at: datetime | None = None


class SourceView(BaseModel):
    title: str
    snippet: str
    url: str | None
    score: float


class MessageView(BaseModel):
    id: str
    role: str
    content: str
    created_at: datetime
    sender_name: str | None = None
    sources: list[SourceView] = []


class VisitorPassView(BaseModel):
    visitor_id: str
    visitor_token: str
    expires_at: datetime


class History(BaseModel):
    conversation: ConversationView | None
    messages: list[MessageView]


class Said(RequestModel):
    content: Annotated[str, Field(min_length=1, max_length=4000)]


class LeadForm(RequestModel):
    name: Annotated[str, Field(max_length=128)] | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=64)] | None = None


class ConversationOnly(BaseModel):
    conversation: ConversationView


def _conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(
        id=conversation.id,
        status=FROM_CORE_STATUS[conversation.status],
        human_requested=bool(conversation.meta.get("human_requested")),
        operator=handoff.held_by(conversation),
        created_at=conversation.created_at,
    )


def _status_view(event: StatusChanged) -> ConversationView:
    return ConversationView(
        id=event.conversation_id,
        status=FROM_CORE_STATUS[event.status],
        human_requested=event.human_requested,
        operator=event.operator,
    )


def _source_views(stored: list[dict[str, Any]]) -> list[SourceView]:
    return [
        SourceView(
            title=str(source.get("document_name") or ""),
            snippet=str(source.get("content") or "")[:SNIPPET_CHARACTERS],
            url=(source.get("metadata") or {}).get("url"),
            score=float(source.get("score") or 0.0),
        )
        for source in stored
    ]


def _found(sources: list[Source]) -> list[SourceView]:
    return [
        SourceView(
            title=source.document_name,
            snippet=source.content[:SNIPPET_CHARACTERS],
            url=source.metadata.get("url"),
            score=source.score,
        )
        for source in sources
    ]


VISIBLE_ROLES = ("user", "assistant", "operator")


def _message_view(message: StoredMessage | MessageAdded) -> MessageView:
    if isinstance(message, MessageAdded):
        meta, message_id, created = (
            message.meta,
            message.message_id,
            datetime.fromisoformat(message.created_at),
        )
    else:
        meta, message_id, created = message.meta, message.id, message.created_at
    return MessageView(
        id=message_id,
        role=message.role,
        content=message.content,
        created_at=created,
        sender_name=meta.get("sender_name") if message.role == "operator" else None,
        sources=_source_views(meta.get("sources") or []) if message.role == "assistant" else [],
    )


def _sse(event: str, data: BaseModel | dict[str, Any]) -> str:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _error_data(error: TertuliaError) -> dict[str, str]:
    return {"code": CODES.get(error.kind, (500, "INTERNAL_ERROR"))[1], "message": error.message}


def _origin_of(caller: Principal) -> str:
    """The connection name a visitor's own writes carry: its live stream skips them, since the
    reply stream that asked already told the widget."""
    return f"visitor:{caller.visitor_id}"


STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


# --- the widget's paths ---------------------------------------------------------------------


@router.get("/config", dependencies=[OriginChecked])
async def config(caller: WidgetCaller, session: SessionDep) -> widget.PublicConfig:
    return await widget.public_config(session, caller)


@router.post("/visitors", status_code=status.HTTP_201_CREATED, dependencies=[OriginChecked])
async def new_visitor(
    request: Request, caller: WidgetCaller, runtime: RuntimeDep, session: SessionDep
) -> VisitorPassView:
    key = await session.get(ApiKey, caller.key_id)
    if key is None or key.kind != "widget" or caller.visitor_id is not None:
        raise Forbidden("only a widget key makes visitors")
    # Visitors are cheap to make: a page may not make them faster than people sign in.
    await runtime.rate_limiter.hit_address(request.client.host if request.client else "unknown")
    ttl = runtime.settings.widget_visitor_days * 86_400
    issued = issue_visitor_token(caller, runtime.secret, ttl)
    return VisitorPassView(
        visitor_id=issued.visitor_id, visitor_token=issued.token, expires_at=issued.expires_at
    )


@router.get("/conversation", dependencies=[OriginChecked])
async def history(caller: Visitor, session: SessionDep) -> History:
    conversation = await widget.latest_conversation(session, caller)
    if conversation is None:
        return History(conversation=None, messages=[])
    page = await list_messages(session, caller, conversation.id, HISTORY_LIMIT, 0)
    if page.total > HISTORY_LIMIT:  # the latest ones, in order
        page = await list_messages(
            session, caller, conversation.id, HISTORY_LIMIT, page.total - HISTORY_LIMIT
        )
    shown = [_message_view(message) for message in page.items if message.role in VISIBLE_ROLES]
    return History(conversation=_conversation_view(conversation), messages=shown)


@router.post("/conversation", status_code=status.HTTP_201_CREATED, dependencies=[OriginChecked])
async def start_afresh(caller: Visitor, session: SessionDep) -> History:
    conversation = await widget.start_conversation(session, caller)
    return History(conversation=_conversation_view(conversation), messages=[])


@router.post("/contact", dependencies=[OriginChecked])
async def contact(body: LeadForm, caller: Visitor, session: SessionDep) -> ConversationOnly:
    details = {"firstName": body.name, "email": body.email, "phoneNumber": body.phone}
    conversation = await widget.leave_contact(session, caller, details)
    return ConversationOnly(conversation=_conversation_view(conversation))


@router.post("/handoff", dependencies=[OriginChecked])
async def ask_for_person(caller: Visitor, session: SessionDep) -> ConversationOnly:
    return ConversationOnly(conversation=_conversation_view(await widget.ask_for_person(session, caller)))


@router.post("/messages", dependencies=[OriginChecked])
async def say(body: Said, caller: Visitor, runtime: RuntimeDep, session: SessionDep) -> StreamingResponse:
    conversation = await widget.latest_conversation(session, caller) or await widget.start_conversation(
        session, caller
    )
    events = runtime.chat.reply(caller, conversation.id, Question(body.content, origin=_origin_of(caller)))
    await session.close()  # the stream may be long: its pool connection goes back now
    first = await anext(events, None)
    if isinstance(first, Failed):  # nothing said yet: a plain error in the face's envelope
        await events.aclose()  # type: ignore[attr-defined]
        raise first.error
    return StreamingResponse(
        _reply_stream(runtime, caller, conversation, first, events),
        media_type="text/event-stream",
        headers=STREAM_HEADERS,
    )


async def _reply_stream(
    runtime: Runtime,
    caller: Principal,
    conversation: Conversation,
    first: ChatEvent | None,
    events: AsyncIterator[ChatEvent],
) -> AsyncIterator[str]:
    yield _sse("start", {"conversation": _conversation_view(conversation).model_dump(mode="json")})
    async with aclosing(events):  # type: ignore[type-var]
        event = first
        while event is not None:
            if isinstance(event, Sources):
                yield _sse("sources", {"sources": [view.model_dump() for view in _found(event.sources)]})
            elif isinstance(event, Token) and event.text:
                yield _sse("token", {"text": event.text})
            elif isinstance(event, Failed):
                yield _sse("error", _error_data(event.error))
                return
            elif isinstance(event, Held):
                now = await _now(runtime, caller, conversation.id)
                yield _sse("held", {"conversation": now.model_dump(mode="json")})
                return
            elif isinstance(event, Done):
                assert event.reply is not None
                now = await _now(runtime, caller, conversation.id)
                done = {
                    "message": _message_view(event.reply).model_dump(mode="json"),
                    "user_message": _message_view(event.user_message).model_dump(mode="json")
                    if event.user_message
                    else None,
                    "conversation": now.model_dump(mode="json"),
                }
                yield _sse("done", done)
                return
            event = await anext(events, None)


async def _now(runtime: Runtime, caller: Principal, conversation_id: str) -> ConversationView:
    """The conversation as it is after the reply (a tool may have asked for a person)."""
    async with runtime.database.session() as session:
        return _conversation_view(await get_conversation(session, caller, conversation_id))


@router.get("/events", dependencies=[OriginChecked])
async def live(caller: Visitor, runtime: RuntimeDep, session: SessionDep) -> StreamingResponse:
    conversation = await widget.current_conversation(session, caller)
    await session.close()  # a live stream lasts hours: it must not keep a pool connection
    queue = runtime.events.watch(conversation.id)
    return StreamingResponse(
        _live_stream(runtime, conversation.id, queue, _origin_of(caller)),
        media_type="text/event-stream",
        headers=STREAM_HEADERS,
    )


async def _live_stream(
    runtime: Runtime, conversation_id: str, queue: "asyncio.Queue[Any]", own: str
) -> AsyncIterator[str]:
    try:
        yield ": connected\n\n"  # the headers go out now, so the widget knows it is listening
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=PING_SECONDS)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if event.origin == own:
                continue
            if isinstance(event, StatusChanged):
                yield _sse("status", {"conversation": _status_view(event).model_dump(mode="json")})
            elif isinstance(event, MessageAdded) and event.role in VISIBLE_ROLES:
                yield _sse("message", _message_view(event))
    finally:
        runtime.events.unwatch(conversation_id, queue)


# --- the account's side: settings and keys --------------------------------------------------


class WidgetSettings(BaseModel):
    allowed_origins: list[str]
    title: str | None
    avatar_url: str | None
    greeting: str
    language: str
    colors: dict[str, str]
    position: str
    human_handoff: bool
    lead_form: bool
    visitor_rate_limit: str


class WidgetSettingsUpdate(RequestModel):
    allowed_origins: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=50)] | None = (
        None
    )
    title: Annotated[str, Field(max_length=128)] | None = None
    avatar_url: Annotated[str, Field(max_length=2048)] | None = None
    greeting: Annotated[str, Field(max_length=1000)] | None = None
    language: str | None = None
    colors: dict[str, str] | None = None
    position: str | None = None
    human_handoff: bool | None = None
    lead_form: bool | None = None


class WidgetKeyCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=128)] = "widget"


class WidgetKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class WidgetKeyCreated(WidgetKeyPublic):
    key: str
    embed: str


class WidgetKeys(BaseModel):
    keys: list[WidgetKeyPublic]


def _settings_view(settings: dict[str, Any], runtime: Runtime) -> WidgetSettings:
    return WidgetSettings(**settings, visitor_rate_limit=runtime.settings.widget_visitor_rate_limit)


def _key_view(key: ApiKey) -> WidgetKeyPublic:
    return WidgetKeyPublic(
        id=key.id, name=key.name, prefix=key.prefix, created_at=key.created_at, revoked_at=key.revoked_at
    )


def embed_snippet(request: Request, bot_id: str, key: str) -> str:
    base = str(request.base_url).rstrip("/")
    return f'<script src="{base}/widget.js" data-bot="{bot_id}" data-key="{key}" async></script>'


@settings_router.get("")
async def get_settings(
    bot_id: str, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> WidgetSettings:
    return _settings_view(await widget.get_settings(session, principal, bot_id), runtime)


@settings_router.put("")
async def put_settings(
    bot_id: str,
    body: WidgetSettingsUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> WidgetSettings:
    changes = body.model_dump(exclude_unset=True)
    return _settings_view(await widget.update_settings(session, principal, bot_id, changes), runtime)


@settings_router.post("/keys", status_code=status.HTTP_201_CREATED)
async def create_key(
    bot_id: str, body: WidgetKeyCreate, request: Request, principal: CurrentPrincipal, session: SessionDep
) -> WidgetKeyCreated:
    issued = await widget.create_key(session, principal, bot_id, body.name)
    return WidgetKeyCreated(
        **_key_view(issued.key).model_dump(),
        key=issued.secret,
        embed=embed_snippet(request, issued.key.bot_id or bot_id, issued.secret),
    )


@settings_router.get("/keys")
async def list_keys(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> WidgetKeys:
    return WidgetKeys(keys=[_key_view(key) for key in await widget.list_keys(session, principal, bot_id)])


@settings_router.delete("/keys/{key_id}")
async def revoke_key(
    bot_id: str, key_id: str, principal: CurrentPrincipal, session: SessionDep
) -> WidgetKeyPublic:
    return _key_view(await widget.revoke_key(session, principal, bot_id, key_id))
