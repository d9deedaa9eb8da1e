"""The Agent v2 face (agent-v2-api.txt) at /api/v2: agents, their chat (JSON or server-sent
events), conversations with contacts and statuses, and datastores with their sources.

Agents are core bots, datastores core knowledge bases; the tools are bot plugins, and a
datastore tool with an id links that knowledge base. A thin translator over core.
"""

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, UploadFile, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import bots, conversations, handoff
from tertulia.core.chat import (
    ChatEvent,
    Done,
    Failed,
    Question,
    Sources,
    Token,
    ToolReturned,
    collect_reply,
    opening,
)
from tertulia.core.errors import NotFound
from tertulia.core.knowledge import bases, documents
from tertulia.core.knowledge.retrieval import Query as SearchQuery
from tertulia.core.knowledge.retrieval import Source
from tertulia.core.models import chat_choice
from tertulia.core.paging import Page
from tertulia.faces.agentv2.errors import error_body
from tertulia.faces.agentv2.schemas import (
    AgentCreate,
    AgentList,
    AgentPublic,
    AgentUpdate,
    ChatRequest,
    ChatResponse,
    ConversationList,
    ConversationPublic,
    DatastoreCreate,
    DatastoreList,
    DatastorePublic,
    DatastoreQuery,
    DatastoreTool,
    Deleted,
    MessageList,
    MessagePublic,
    QueryResult,
    QueryResults,
    ResultSource,
    SourceList,
    SourcePublic,
    SourceRef,
    StatusUpdate,
    TextSource,
    UrlSource,
    stamp,
)
from tertulia.faces.deps import BearerPrincipal, RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.runtime import Runtime
from tertulia.store.tables import Bot, Conversation, Document, KnowledgeBase, Message

router = APIRouter(prefix="/api/v2", tags=["agent v2"])

Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]


# --- agents ---------------------------------------------------------------------------------


def _agent(bot: Bot, runtime: Runtime) -> AgentPublic:
    tools: list[str | dict[str, str]] = []
    for tool in bot.plugins or []:
        linked = [base for base in bot.knowledge_bases if base.owner_bot_id is None]
        if tool == "datastore" and linked:
            tools.extend({"type": "datastore", "datastoreId": base.id} for base in linked)
        else:
            tools.append(tool)
    return AgentPublic(
        id=bot.id,
        name=bot.name,
        description=bot.description,
        systemPrompt=bot.system_prompt,
        modelName=bot.llm_model or runtime.models.default_chat.model_id,
        temperature=bot.temperature,
        tools=tools,
        status="active" if bot.is_active else "inactive",
        createdAt=stamp(bot.created_at),
        updatedAt=stamp(bot.updated_at),
    )


async def _tool_values(session: AsyncSession, principal: Any, tools: list[Any]) -> dict[str, Any]:
    """Agent v2's tools → the bot's plugins and linked knowledge bases. A datastore tool with
    an id links that datastore; the plain "datastore" links every datastore of the account."""
    plugins = list(dict.fromkeys("datastore" if isinstance(tool, DatastoreTool) else tool for tool in tools))
    named = [tool.datastoreId for tool in tools if isinstance(tool, DatastoreTool)]
    if "datastore" in tools:
        every = await bases.list_knowledge_bases(session, principal, 100, 0)
        named.extend(base.id for base in every.items if base.owner_bot_id is None)
    return {"plugins": plugins, "knowledge_base_ids": list(dict.fromkeys(named))}


def _model_values(name: str | None, runtime: Runtime) -> dict[str, Any]:
    if name is None:
        return {}
    choice = chat_choice(name, runtime.models.local_models())
    return {"llm_provider": choice.provider, "llm_model": choice.model_id}


def paged(page: Page[Any], data: list[Any]) -> dict[str, Any]:
    """A list response's fields, for `data` made from `page`'s items."""
    more = page.offset + len(page.items) < page.total
    return {"data": data, "total": page.total, "limit": page.limit, "offset": page.offset, "hasMore": more}


@router.get("/agents")
async def list_agents(
    principal: BearerPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AgentList:
    page = await bots.list_bots(session, principal, bots.BotFilters(), limit, offset)
    return AgentList(**paged(page, [_agent(bot, runtime) for bot in page.items]))


@router.post("/agents", status_code=status.HTTP_201_CREATED)
async def create_agent(
    body: AgentCreate, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> AgentPublic:
    values: dict[str, Any] = {
        "description": body.description,
        "system_prompt": body.systemPrompt,
        "platform_type": "api",
        **_model_values(body.modelName, runtime),
        **await _tool_values(session, principal, body.tools),
    }
    if body.temperature is not None:
        values["temperature"] = body.temperature
    bot = await bots.create_bot(session, principal, bots.BotSettings(name=body.name, **values))
    bot = await bots.set_running(session, principal, bot.id, body.status == "active")
    return _agent(bot, runtime)


@router.get("/agents/{agent_id}")
async def get_agent(
    agent_id: str, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> AgentPublic:
    return _agent(await bots.get_bot(session, principal, agent_id), runtime)


@router.put("/agents/{agent_id}")
async def update_agent(
    agent_id: str, body: AgentUpdate, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> AgentPublic:
    sent = body.model_dump(exclude_unset=True)
    renames = {"systemPrompt": "system_prompt"}
    values = {
        renames.get(name, name): value
        for name, value in sent.items()
        if name in ("name", "description", "systemPrompt", "temperature") and value is not None
    }
    values.update(_model_values(body.modelName, runtime))
    if body.tools is not None:
        values.update(await _tool_values(session, principal, body.tools))
    bot = await bots.update_bot(session, principal, agent_id, values)
    if body.status is not None:
        bot = await bots.set_running(session, principal, bot.id, body.status == "active")
    return _agent(bot, runtime)


@router.delete("/agents/{agent_id}")
async def delete_agent(agent_id: str, principal: BearerPrincipal, session: SessionDep) -> Deleted:
    await bots.delete_bot(session, principal, agent_id)
    return Deleted(id=agent_id)


# --- chat -----------------------------------------------------------------------------------


def _refs(sources: list[Source]) -> list[SourceRef]:
    return [SourceRef(source=source.document_name, score=source.score) for source in sources]


async def _conversation(session: AsyncSession, principal: Any, bot: Bot, body: ChatRequest) -> Conversation:
    if body.conversationId is None:
        draft = conversations.ConversationDraft(bot_id=bot.id, platform="api", visitor_id=body.visitorId)
        return await conversations.create_conversation(session, principal, draft)
    conversation = await conversations.get_conversation(session, principal, body.conversationId)
    if conversation.bot_id != bot.id:
        raise NotFound("conversation not found", {"field": "conversationId"})
    return conversation


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/agent/{agent_id}/chat", response_model=ChatResponse)
async def chat(
    agent_id: str,
    body: ChatRequest,
    principal: BearerPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """The agent's answer: JSON, or with `streaming: true` (or `Accept: text/event-stream`)
    server-sent events `token` (each piece), `source` (each source used), then `done` (the
    whole answer, as the JSON reply)."""
    bot = await bots.get_bot(session, principal, agent_id)
    conversation = await _conversation(session, principal, bot, body)
    # The client's contact is kept as sent; what the visitor writes (an email address, a
    # request for a person) is the bot's tools' to act on, in the chat engine.
    contact = handoff.check_contact(body.contact.model_dump(exclude_none=True) if body.contact else {})
    await handoff.keep_contact(session, principal, conversation.id, contact)
    streaming = body.streaming or "text/event-stream" in (accept or "")
    events = runtime.chat.reply(principal, conversation.id, Question(body.query))
    if not streaming:
        done = await collect_reply(events)
        assert done.reply is not None
        return ChatResponse(
            answer=done.text,
            conversationId=conversation.id,
            messageId=done.reply.id,
            sources=_refs(done.sources),
        )
    first = await opening(events)
    return StreamingResponse(
        _stream(first, events, conversation.id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    first: ChatEvent | None, events: AsyncIterator[ChatEvent], conversation_id: str
) -> AsyncIterator[str]:
    async with aclosing(events):  # type: ignore[type-var]
        event = first
        while event is not None:
            if isinstance(event, Token) and event.text:
                yield _sse("token", {"token": event.text})
            elif isinstance(event, Sources):
                for ref in _refs(event.sources):
                    yield _sse("source", ref.model_dump())
            elif isinstance(event, ToolReturned):  # a tool the agent used before answering
                yield _sse("tool", event.outcome.stored())
            elif isinstance(event, Failed):
                yield _sse("error", error_body(event.error)[1])
                return
            elif isinstance(event, Done):
                assert event.reply is not None
                whole = ChatResponse(
                    answer=event.text,
                    conversationId=conversation_id,
                    messageId=event.reply.id,
                    sources=_refs(event.sources),
                )
                yield _sse("done", whole.model_dump())
                return
            event = await anext(events, None)


# --- conversations --------------------------------------------------------------------------


def _conversation_public(conversation: Conversation, count: int) -> ConversationPublic:
    return ConversationPublic(
        id=conversation.id,
        agentId=conversation.bot_id,
        status=conversation.status,
        humanRequested=bool(conversation.meta.get("human_requested")),
        messagesCount=count,
        contact=dict(conversation.meta.get("contact", {})),
        visitorId=conversation.visitor_id,
        createdAt=stamp(conversation.created_at),
        updatedAt=stamp(conversation.updated_at),
    )


@router.get("/conversations")
async def list_conversations(
    principal: BearerPrincipal,
    session: SessionDep,
    agentId: str | None = None,
    status: str | None = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ConversationList:
    filters = conversations.ConversationFilters(bot_id=agentId, status=status)
    page = await conversations.list_conversations(session, principal, filters, limit, offset)
    items = [_conversation_public(item.conversation, item.message_count) for item in page.items]
    return ConversationList(**paged(page, items))


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str, principal: BearerPrincipal, session: SessionDep
) -> ConversationPublic:
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    messages = await conversations.list_messages(session, principal, conversation_id, 1, 0)
    return _conversation_public(conversation, messages.total)


def _message(message: Message) -> MessagePublic:
    stored = message.meta.get("sources", []) if isinstance(message.meta, dict) else []
    return MessagePublic(
        id=message.id,
        role=message.role,
        content=message.content,
        sources=[SourceRef(source=item["document_name"], score=item["score"]) for item in stored],
        createdAt=stamp(message.created_at),
    )


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: str,
    principal: BearerPrincipal,
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> MessageList:
    page = await conversations.list_messages(session, principal, conversation_id, limit, offset)
    return MessageList(**paged(page, [_message(message) for message in page.items]))


@router.put("/conversations/{conversation_id}/status")
async def set_status(
    conversation_id: str, body: StatusUpdate, principal: BearerPrincipal, session: SessionDep
) -> ConversationPublic:
    conversation = await conversations.set_status(session, principal, conversation_id, body.status)
    messages = await conversations.list_messages(session, principal, conversation_id, 1, 0)
    return _conversation_public(conversation, messages.total)


# --- datastores -----------------------------------------------------------------------------


def _datastore(base: KnowledgeBase) -> DatastorePublic:
    return DatastorePublic(
        id=base.id, name=base.name, description=base.description, createdAt=stamp(base.created_at)
    )


def _source(document: Document) -> SourcePublic:
    return SourcePublic(
        id=document.id,
        name=document.name,
        type=document.source_type,
        status=document.status,
        error=document.error,
        jobId=document.job_id,
        createdAt=stamp(document.created_at),
    )


@router.get("/datastores")
async def list_datastores(
    principal: BearerPrincipal, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> DatastoreList:
    # A bot's own base (made for documents given to a bot itself) is not a datastore.
    page = await bases.list_knowledge_bases(session, principal, limit, offset, bots_own=False)
    return DatastoreList(**paged(page, [_datastore(base) for base in page.items]))


@router.post("/datastores", status_code=status.HTTP_201_CREATED)
async def create_datastore(
    body: DatastoreCreate, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> DatastorePublic:
    draft = bases.KnowledgeBaseDraft(name=body.name, description=body.description)
    return _datastore(
        await bases.create_knowledge_base(session, principal, draft, runtime.models, runtime.vectors)
    )


@router.get("/datastores/{datastore_id}")
async def get_datastore(
    datastore_id: str, principal: BearerPrincipal, session: SessionDep
) -> DatastorePublic:
    return _datastore(await bases.get_knowledge_base(session, principal, datastore_id))


@router.delete("/datastores/{datastore_id}")
async def delete_datastore(
    datastore_id: str, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> Deleted:
    await bases.delete_knowledge_base(session, principal, datastore_id, runtime.vectors)
    return Deleted(id=datastore_id)


@router.post("/datastores/{datastore_id}/query")
async def query_datastore(
    datastore_id: str, body: DatastoreQuery, principal: BearerPrincipal, runtime: RuntimeDep
) -> QueryResults:
    found = await runtime.retriever.for_base(
        principal, datastore_id, SearchQuery(body.query, top_k=body.topK)
    )
    return QueryResults(
        results=[
            QueryResult(
                content=source.content, score=source.score, source=ResultSource(name=source.document_name)
            )
            for source in found.sources
        ]
    )


async def _add(
    session: AsyncSession, principal: Any, runtime: Runtime, datastore_id: str, upload: documents.Upload
) -> SourcePublic:
    accepted = await documents.add_document(
        session,
        principal,
        datastore_id,
        upload,
        runtime.jobs,
        max_bytes=runtime.settings.max_upload_bytes,
        max_unpacked_bytes=runtime.settings.max_unpacked_bytes,
        allow_private_urls=runtime.settings.allow_private_urls,
    )
    return _source(accepted.document)


@router.post("/datastores/{datastore_id}/sources/file", status_code=status.HTTP_202_ACCEPTED)
async def add_file(
    datastore_id: str,
    principal: BearerPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    file: Annotated[
        UploadFile, File(description="The document: text, Markdown, HTML, PDF, DOCX, XLSX, CSV or JSON")
    ],
) -> SourcePublic:
    data = await file.read(runtime.settings.max_upload_bytes + 1)
    name = clean(file.filename or "", "file") or "upload"
    return await _add(
        session, principal, runtime, datastore_id, documents.Upload("file", name, data, file.content_type)
    )


@router.post("/datastores/{datastore_id}/sources/url", status_code=status.HTTP_202_ACCEPTED)
async def add_url(
    datastore_id: str, body: UrlSource, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> SourcePublic:
    return await _add(
        session, principal, runtime, datastore_id, documents.Upload("url", body.url, url=body.url)
    )


@router.post("/datastores/{datastore_id}/sources/text", status_code=status.HTTP_202_ACCEPTED)
async def add_text(
    datastore_id: str, body: TextSource, principal: BearerPrincipal, session: SessionDep, runtime: RuntimeDep
) -> SourcePublic:
    upload = documents.Upload("text", body.name, body.content.encode(), "text/plain")
    return await _add(session, principal, runtime, datastore_id, upload)


@router.get("/datastores/{datastore_id}/sources")
async def list_sources(
    datastore_id: str, principal: BearerPrincipal, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> SourceList:
    page = await documents.list_documents(session, principal, datastore_id, limit, offset)
    return SourceList(**paged(page, [_source(document) for document in page.items]))
