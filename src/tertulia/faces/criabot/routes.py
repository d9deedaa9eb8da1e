"""The CriaBot face (criabot-api.md): bots by name with numbered models and hyperparameters,
chat sessions, and the bot's documents (JSON nodes) and questions (with their answer).

Auth is an API key in `X-API-Key` or `?api_key=`: the account's own key (CriaBot's master
key) reaches all its bots, the key a bot is created with reaches that bot only. A thin
translator: the rules live in core.
"""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, APIKeyQuery
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import bots, chats, models, provisioning
from tertulia.core.accounts import Principal
from tertulia.core.catalog import ModelChoice
from tertulia.core.chat import Done, Question, collect_reply
from tertulia.core.errors import Invalid
from tertulia.core.knowledge import documents
from tertulia.faces.criabot.errors import envelope
from tertulia.faces.criabot.schemas import (
    About,
    AboutInfo,
    AboutParams,
    AboutResponse,
    Block,
    BotConfig,
    BotCreated,
    ChatSend,
    ChatStarted,
    CompletionUsage,
    DocumentNames,
    DocumentUpload,
    Envelope,
    ExistsResponse,
    HistoryMessage,
    HistoryResponse,
    Indexed,
    Params,
    QuestionUpload,
    RelatedPrompt,
    Reply,
    ReplyResponse,
    SourcePublic,
)
from tertulia.faces.deps import RuntimeDep, SessionDep, admit
from tertulia.runtime import Runtime
from tertulia.store.tables import Bot

router = APIRouter(tags=["criabot"])

# Documents and questions are indexed before the reply, as CriaBot does, up to this long.
INDEX_WAIT_SECONDS = 120.0
DOCUMENT_TYPES = ("nodes", "file", "text", "url")
QUESTION_TYPES = ("qa",)
# CriaBot's parameter names → the core's.
RENAMES = {"system_message": "system_prompt"}

header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A Tertulia API key")
query_key = APIKeyQuery(name="api_key", auto_error=False, description="The same key, as a query parameter")


async def criabot_principal(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    from_header: Annotated[str | None, Depends(header_key)],
    from_query: Annotated[str | None, Depends(query_key)],
) -> Principal:
    return await admit(request, runtime, session, from_header or from_query)


Caller = Annotated[Principal, Depends(criabot_principal)]


def _stamp(model: type[Envelope], message: str, **fields: Any) -> Any:
    return model(**envelope(message, **fields))


# --- bots -----------------------------------------------------------------------------------


def _param_values(body: Params) -> dict[str, Any]:
    sent = body.model_dump(exclude_unset=True, include=set(Params.model_fields))
    values = {RENAMES.get(name, name): value for name, value in sent.items()}
    if values.get("system_prompt", "") is None:
        values["system_prompt"] = ""
    nulls = sorted(name for name, value in values.items() if value is None)
    if nulls:
        raise Invalid(f"{nulls[0]} must not be null", {"field": nulls[0]})
    return values


async def _chosen(
    session: AsyncSession, principal: Principal, runtime: Runtime, body: BotConfig
) -> tuple[list[ModelChoice], ModelChoice | None]:
    """The toolbox (chat, rerank) and the embedder named by the body's model numbers."""
    routed: list[ModelChoice] = []
    if body.llm_model_id is not None:
        routed.append(
            await models.numbered_model(
                session, principal, runtime.models, body.llm_model_id, "chat", "llm_model_id"
            )
        )
    if body.rerank_model_id is not None:
        routed.append(
            await models.numbered_model(
                session, principal, runtime.models, body.rerank_model_id, "rerank", "rerank_model_id"
            )
        )
    embedding = None
    if body.embedding_model_id is not None:
        embedding = await models.numbered_model(
            session, principal, runtime.models, body.embedding_model_id, "embedding", "embedding_model_id"
        )
    return routed, embedding


@router.post("/bots/{bot_name}/manage/create")
async def create_bot(
    bot_name: str, principal: Caller, session: SessionDep, runtime: RuntimeDep, body: BotConfig | None = None
) -> BotCreated:
    body = body or BotConfig()
    routed, embedding = await _chosen(session, principal, runtime, body)
    values = _param_values(body)
    settings = bots.BotSettings(name=bot_name, platform_type="api", **values)
    provisioned = await provisioning.provision_bot(session, principal, settings, routed, embedding)
    return _stamp(
        BotCreated, "Successfully created the bot & their indexes.", bot_api_key=provisioned.api_key
    )


@router.patch("/bots/{bot_name}/manage/update")
async def update_bot(
    bot_name: str, body: BotConfig, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Envelope:
    bot = await bots.get_bot_by_name(session, principal, bot_name)
    routed, embedding = await _chosen(session, principal, runtime, body)
    values = _param_values(body)
    if embedding is not None:
        await provisioning.change_embedding(session, principal, bot.id, embedding)
    await bots.update_bot(session, principal, bot.id, values, models=routed)
    return _stamp(Envelope, "Successfully updated the bot.")


@router.delete("/bots/{bot_name}/manage/delete")
async def delete_bot(bot_name: str, principal: Caller, session: SessionDep) -> Envelope:
    bot = await bots.get_bot_by_name(session, principal, bot_name)
    await bots.delete_bot(session, principal, bot.id)
    return _stamp(Envelope, "Successfully deleted the bot.")


@router.get("/bots/{bot_name}/manage/about")
async def about_bot(bot_name: str, principal: Caller, session: SessionDep) -> AboutResponse:
    bot = await bots.get_bot_by_name(session, principal, bot_name)
    number = bot.number or 0
    params = AboutParams(
        max_input_tokens=bot.max_input_tokens,
        max_reply_tokens=bot.max_reply_tokens,
        temperature=bot.temperature,
        top_p=bot.top_p,
        top_k=bot.top_k,
        min_k=bot.min_k,
        top_n=bot.top_n,
        min_n=bot.min_n,
        llm_generate_related_prompts=bot.llm_generate_related_prompts,
        no_context_message=bot.no_context_message,
        no_context_use_message=bot.no_context_use_message,
        no_context_llm_guess=bot.no_context_llm_guess,
        system_message=bot.system_prompt or None,
        bot_id=number,
        id=number,
    )
    info = AboutInfo(name=bot.name, id=number, created=bot.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
    return _stamp(
        AboutResponse, "Successfully retrieved the bot info.", about=About(info=info, params=params)
    )


# --- chats ----------------------------------------------------------------------------------


@router.post("/bots/chats/start")
async def start_chat(principal: Caller, session: SessionDep) -> ChatStarted:
    chat = await chats.start_chat(session, principal)
    return _stamp(ChatStarted, "Successfully started a new chat.", chat_id=chat.id)


async def _bots(session: AsyncSession, principal: Principal, body: ChatSend) -> tuple[Bot, list[str]]:
    bot = await bots.get_bot_by_name(session, principal, body.bot_name)
    extra = [(await bots.get_bot_by_name(session, principal, name)).id for name in body.extra_bots]
    return bot, [bot_id for bot_id in dict.fromkeys(extra) if bot_id != bot.id]


def _reply(done: Done) -> Reply:
    usage = done.usage
    return Reply(
        message=done.text,
        completion_usage=CompletionUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.prompt_tokens + usage.completion_tokens,
        ),
        related_prompts=[RelatedPrompt(label=prompt, prompt=prompt) for prompt in done.related_prompts],
        sources=[
            SourcePublic(
                document_name=source.document_name,
                content=source.content,
                score=source.score,
                metadata=source.metadata,
            )
            for source in done.sources
        ],
    )


@router.post("/bots/chats/{chat_id}/send")
async def send(
    chat_id: str, body: ChatSend, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> ReplyResponse:
    """A message in the chat: answered with the chat's history, and kept in it."""
    bot, extra = await _bots(session, principal, body)
    conversation_id = await chats.chat_conversation(session, principal, chat_id, bot)
    done = await collect_reply(runtime.chat.reply(principal, conversation_id, Question(body.prompt), extra))
    return _stamp(ReplyResponse, "Successfully sent the chat", reply=_reply(done))


@router.post("/bots/chats/{chat_id}/query")
async def query(
    chat_id: str, body: ChatSend, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> ReplyResponse:
    """A one-message exchange: answered without the chat's history and not added to it."""
    bot, extra = await _bots(session, principal, body)
    conversation_id = await chats.one_shot_conversation(session, principal, chat_id, bot)
    done = await collect_reply(runtime.chat.reply(principal, conversation_id, Question(body.prompt), extra))
    await chats.close_one_shot(session, principal, conversation_id)
    return _stamp(ReplyResponse, "Successfully sent the query", reply=_reply(done))


@router.delete("/bots/chats/{chat_id}/end")
async def end_chat(chat_id: str, principal: Caller, session: SessionDep) -> Envelope:
    await chats.end_chat(session, principal, chat_id)
    return _stamp(Envelope, "Successfully ended the chat.")


@router.get("/bots/chats/{chat_id}/history")
async def history(chat_id: str, principal: Caller, session: SessionDep) -> HistoryResponse:
    messages = await chats.chat_history(session, principal, chat_id)
    return _stamp(
        HistoryResponse,
        "Successfully retrieved the chat history.",
        history=[
            HistoryMessage(
                role=message.role,
                blocks=[Block(block_type="text", text=message.content)],
                additional_kwargs={},
                metadata={"token_count": message.token_count},
            )
            for message in messages
        ],
    )


@router.get("/bots/chats/{chat_id}/exists")
async def exists(chat_id: str, principal: Caller, session: SessionDep) -> ExistsResponse:
    found = await chats.chat_exists(session, principal, chat_id)
    return _stamp(ExistsResponse, f"Checked if the chat '{chat_id}' is active!", exists=found)


# --- documents and questions ----------------------------------------------------------------


async def _index(
    session: AsyncSession,
    principal: Principal,
    runtime: Runtime,
    bot_name: str,
    upload: documents.Upload,
    replacing: bool,
    kinds: tuple[str, ...],
) -> documents.Document:
    """Indexes into the bot's own knowledge base and waits for it, as CriaBot answers once
    the content is searchable. Uploading a name that exists is a duplicate; updating one
    that does not, not found."""
    bot = await bots.get_bot_by_name(session, principal, bot_name)
    base = await documents.bot_knowledge_base(session, principal, bot.id)
    await documents.expect_document(session, principal, base.id, upload.name, kinds, exists=replacing)
    await documents.add_and_wait(
        session,
        principal,
        base.id,
        upload,
        runtime.jobs,
        max_bytes=runtime.settings.max_upload_bytes,
        max_unpacked_bytes=runtime.settings.max_unpacked_bytes,
        timeout_seconds=INDEX_WAIT_SECONDS,
        field="file_contents",
    )
    return await documents.find_document(session, principal, base.id, upload.name, kinds)


async def _indexed(
    session: AsyncSession, principal: Principal, document: documents.Document, message: str
) -> Any:
    if document.status != "ready":  # still indexing when the wait ran out: say so, as a 202
        body = envelope(STILL_INDEXING, 202, document_name=document.name, token_usage=0)
        return JSONResponse(body, status_code=202)
    tokens = await documents.document_tokens(session, principal, document)
    return _stamp(Indexed, message, document_name=document.name, token_usage=tokens)


def _nodes(body: DocumentUpload) -> documents.Upload:
    nodes = [node.model_dump() for node in body.file_contents.nodes]
    data = json.dumps(nodes, ensure_ascii=False).encode()
    return documents.Upload(
        "nodes", body.file_name, data, "application/json", metadata=dict(body.file_metadata)
    )


def _questions(body: QuestionUpload) -> documents.Upload:
    contents = body.file_contents
    pairs = [[question, contents.answer] for question in contents.questions]
    data = json.dumps(pairs, ensure_ascii=False).encode()
    metadata = {**body.file_metadata, "llm_reply": contents.llm_reply}
    return documents.Upload("qa", body.file_name, data, "application/json", metadata=metadata)


STILL_INDEXING = "Accepted: the document is still being indexed and will be searchable once it is done."
ADDED = "Successfully added to the index. Save the 'document_name' field to be able to update it!"


@router.post("/bots/{bot_name}/documents/upload", response_model=Indexed)
async def upload_document(
    bot_name: str, body: DocumentUpload, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Any:
    document = await _index(session, principal, runtime, bot_name, _nodes(body), False, DOCUMENT_TYPES)
    return await _indexed(session, principal, document, ADDED)


@router.patch("/bots/{bot_name}/documents/update", response_model=Indexed)
async def update_document(
    bot_name: str, body: DocumentUpload, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Any:
    document = await _index(session, principal, runtime, bot_name, _nodes(body), True, DOCUMENT_TYPES)
    return await _indexed(session, principal, document, "Successfully updated the document.")


@router.post("/bots/{bot_name}/questions/upload", response_model=Indexed)
async def upload_question(
    bot_name: str, body: QuestionUpload, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Any:
    document = await _index(session, principal, runtime, bot_name, _questions(body), False, QUESTION_TYPES)
    return await _indexed(session, principal, document, ADDED)


@router.patch("/bots/{bot_name}/questions/update", response_model=Indexed)
async def update_question(
    bot_name: str, body: QuestionUpload, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Any:
    document = await _index(session, principal, runtime, bot_name, _questions(body), True, QUESTION_TYPES)
    return await _indexed(session, principal, document, "Successfully updated the document.")


async def _delete(
    session: AsyncSession,
    principal: Principal,
    runtime: Runtime,
    bot_name: str,
    name: str,
    kinds: tuple[str, ...],
) -> Envelope:
    bot = await bots.get_bot_by_name(session, principal, bot_name)
    base = await documents.bot_knowledge_base(session, principal, bot.id)
    document = await documents.find_document(session, principal, base.id, name, kinds)
    await documents.delete_document(session, principal, base.id, document.id, runtime.vectors)
    return _stamp(Envelope, "Successfully deleted the documents from the index.")


async def _names(
    session: AsyncSession, principal: Principal, bot_name: str, kinds: tuple[str, ...]
) -> DocumentNames:
    bot = await bots.get_bot_by_name(session, principal, bot_name)
    base = await documents.bot_knowledge_base(session, principal, bot.id)
    names = await documents.document_names(session, principal, base.id, kinds)
    return _stamp(DocumentNames, "Successfully retrieved all documents names.", document_names=names)


DocumentName = Annotated[str, Query(min_length=1, max_length=512)]


@router.delete("/bots/{bot_name}/documents/delete")
async def delete_document(
    bot_name: str, document_name: DocumentName, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Envelope:
    return await _delete(session, principal, runtime, bot_name, document_name, DOCUMENT_TYPES)


@router.get("/bots/{bot_name}/documents/list")
async def list_documents(bot_name: str, principal: Caller, session: SessionDep) -> DocumentNames:
    return await _names(session, principal, bot_name, DOCUMENT_TYPES)


@router.delete("/bots/{bot_name}/questions/delete")
async def delete_question(
    bot_name: str, document_name: DocumentName, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Envelope:
    return await _delete(session, principal, runtime, bot_name, document_name, QUESTION_TYPES)


@router.get("/bots/{bot_name}/questions/list")
async def list_questions(bot_name: str, principal: Caller, session: SessionDep) -> DocumentNames:
    return await _names(session, principal, bot_name, QUESTION_TYPES)
