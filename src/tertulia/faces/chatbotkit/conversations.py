"""ChatBotKit conversations: CRUD, messages, and the replies — `complete` (stateless, or in a
stored conversation), `send` then `receive` — as JSON or as an `application/jsonl` stream
of `token`, `message`, `usage` and a final `result` line (docs/chatbotkit-face.md §5)."""

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import false, select

from tertulia.core import contacts, conversations
from tertulia.core.catalog import ModelChoice
from tertulia.core.chat import (
    ChatEvent,
    Completion,
    Done,
    Failed,
    Question,
    Token,
    ToolReturned,
    collect_reply,
    opening,
)
from tertulia.core.errors import Invalid, TertuliaError
from tertulia.core.models import chat_choice
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.bots import Body, reachable_bot
from tertulia.faces.chatbotkit.common import (
    Caller,
    Paging,
    given_meta,
    jsonl,
    line,
    merged_meta,
    ms,
    page_response,
    wants_stream,
)
from tertulia.faces.chatbotkit.errors import error_body
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.providers.base import ChatTurn
from tertulia.store.tables import Conversation, Message

router = APIRouter(prefix="/conversation", tags=["chatbotkit"])

# ChatBotKit's message types ↔ the core's roles. Types the model does not read as turns
# (context, instruction, backstory …) are kept as system messages.
ROLE_OF = {"user": "user", "bot": "assistant"}
TYPE_OF = {"user": "user", "assistant": "bot", "system": "context", "operator": "bot", "tool": "activity"}
MESSAGE_TYPES = ("user", "bot", "reasoning", "context", "instruction", "backstory", "activity", "checkpoint")
MAX_TEXT = 32_000
MAX_CONTINUATIONS = 8  # a larger `limits.continuations` is held to this: each one is a model call
# Failures a stream answers with an HTTP error before it starts; any other is an `error` line.
REQUEST_FAULTS = ("invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_large")
CONTACT_FIELDS = ("fingerprint", "name", "nick", "email", "phone", "description", "preferences")


def conversation_public(conversation: Conversation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": conversation.id,
        "createdAt": ms(conversation.created_at),
        "updatedAt": ms(conversation.updated_at),
        "botId": conversation.bot_id,
        "meta": conversation.meta.get("cbk", {}),
    }
    if conversation.title:
        body["name"] = conversation.title
    if conversation.contact_id:
        body["contactId"] = conversation.contact_id
    return body


def message_public(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "createdAt": ms(message.created_at),
        "updatedAt": ms(message.created_at),
        "type": message.meta.get("cbk_type") or TYPE_OF.get(message.role, "context"),
        "text": message.content,
        "meta": message.meta.get("cbk", {}),
    }


def _messages(value: Any, field: str = "messages") -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"{field} must be a list of {{type, text}}", {"field": field})
    found = []
    for position, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or item.get("type") not in MESSAGE_TYPES
            or not isinstance(item.get("text"), str)
        ):
            raise Invalid(
                f"{field}[{position}] must be {{type, text}} with type one of {', '.join(MESSAGE_TYPES)}",
                {"field": f"{field}.{position}"},
            )
        if len(item["text"]) > MAX_TEXT:
            raise Invalid(f"{field}[{position}].text is too long", {"field": f"{field}.{position}.text"})
        found.append((item["type"], item["text"]))
    return found


def _text(body: dict[str, Any], required: bool) -> str | None:
    text = body.get("text")
    if text is None and not required:
        return None
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text must be a non-empty string", {"field": "text"})
    if len(text) > MAX_TEXT:
        raise Invalid(f"text has at most {MAX_TEXT} characters", {"field": "text"})
    return text


def _continuations(body: dict[str, Any]) -> int:
    """`limits.continuations` (0 when not asked), held to MAX_CONTINUATIONS.

    `limits.iterations` and `limits.calls` bound tool use, which Tertulia does not run yet:
    they are checked (integers ≥ 1, as the SDKs type them), and change nothing yet.
    """
    limits = body.get("limits")
    if limits is None:
        return 0
    if not isinstance(limits, dict):
        raise Invalid("limits must be an object", {"field": "limits"})
    for name in ("iterations", "continuations", "calls"):
        value = limits.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise Invalid(f"limits.{name} must be a positive integer", {"field": f"limits.{name}"})
    return min(limits.get("continuations") or 0, MAX_CONTINUATIONS)


async def _contact(session: Any, principal: Any, given: Any) -> str | None:
    """`contactId`: a contact's id, or a contact (with its fingerprint) to ensure."""
    if given is None:
        return None
    if isinstance(given, str):
        return (await contacts.get_contact(session, principal, given)).id
    if isinstance(given, dict):
        values = {name: given[name] for name in CONTACT_FIELDS if given.get(name) is not None}
        return (await contacts.ensure_contact(session, principal, values)).id
    raise Invalid("contactId must be a contact id or a contact", {"field": "contactId"})


# --- resources -------------------------------------------------------------------------------


@router.get("/list")
async def list_conversations(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("conversations:read")
    query = owned(principal, Conversation)
    given = request.query_params
    if given.get("botId"):
        query = query.where(Conversation.bot_id == given["botId"])
    if given.get("contactId"):
        query = query.where(Conversation.contact_id == given["contactId"])
    if given.get("taskId"):
        query = query.where(false())  # Tertulia has no tasks: no conversation belongs to one
    for name, value in given.multi_items():
        if name.startswith("meta.") and len(name) > len("meta."):
            clean(value, name)
            query = query.where(Conversation.meta["cbk"][name.removeprefix("meta.")].as_string() == value)
    items = [conversation_public(row) for row in await paging.page(session, query, Conversation)]
    return page_response(request, items)


@router.get("/{conversation_id}/fetch")
async def fetch_conversation(conversation_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return conversation_public(await conversations.get_conversation(session, principal, conversation_id))


@router.post("/create")
async def create_conversation(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    clean(body, "body")
    if body.get("botId") is None:
        raise Invalid("botId is required: a Tertulia conversation is held with a bot", {"field": "botId"})
    bot = await reachable_bot(session, principal, body["botId"])
    conversation, given = await start_conversation(session, principal, bot.id, body)
    reply: dict[str, Any] = {"id": conversation.id}
    if given:
        reply["messages"] = [{"type": kind, "text": text} for kind, text in given]
    return reply


async def start_conversation(
    session: Any, principal: Any, bot_id: str, body: dict[str, Any]
) -> tuple[Conversation, list[tuple[str, str]]]:
    """A conversation with the bot as `body` describes it (name, meta, contactId, opening
    messages), and the messages it was given."""
    given = _messages(body.get("messages"))
    name = body.get("name") if isinstance(body.get("name"), str) else ""
    meta = {"cbk": given_meta(body)} if isinstance(body.get("meta"), dict) else {}
    draft = conversations.ConversationDraft(
        bot_id=bot_id,
        title=name[:256],
        platform="api",
        metadata=meta,
        contact_id=await _contact(session, principal, body.get("contactId")),
    )
    conversation = await conversations.create_conversation(session, principal, draft)
    for kind, text in given:
        await conversations.add_message(
            session,
            principal,
            conversation.id,
            ROLE_OF.get(kind, "system"),
            text,
            metadata={"cbk_type": kind},
        )
    return conversation, given


@router.post("/{conversation_id}/update")
async def update_conversation(
    conversation_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    meta = merged_meta(conversation.meta.get("cbk", {}), body)
    changes: dict[str, Any] = {}
    if meta is not None:
        changes["metadata"] = {**conversation.meta, "cbk": meta}
    if isinstance(body.get("name"), str):
        changes["title"] = body["name"][:256]
    if changes:
        await conversations.update_conversation(session, principal, conversation.id, changes)
    return {"id": conversation.id}


@router.post("/{conversation_id}/delete")
async def delete_conversation(conversation_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    await conversations.delete_conversation(session, principal, conversation_id)
    return {"id": conversation_id}


@router.get("/{conversation_id}/message/list")
async def list_messages(
    conversation_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    query = select(Message).where(
        Message.conversation_id == conversation.id, Message.account_id == principal.account_id
    )
    items = [message_public(row) for row in await paging.page(session, query, Message)]
    return page_response(request, items)


# --- replies --------------------------------------------------------------------------------


def _result(done: Done, stored: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "text": done.text,
        "usage": {"token": done.usage.prompt_tokens + done.usage.completion_tokens},
        "end": {"reason": "length" if done.finish_reason == "length" else "stop"},
    }
    if stored and done.reply is not None:
        result = {"id": done.reply.id, **result}
    return result


def _the_requests_fault(error: TertuliaError) -> bool:
    """A failure the request itself caused (bad input, a missing resource, a scope)."""
    return error.kind in REQUEST_FAULTS


async def _answer(request: Request, events: AsyncIterator[ChatEvent], shape: Any) -> Any:
    """The reply as JSON, or as a JSONL stream when the client accepts it. In JSON a failure
    is an HTTP error. A stream, as ChatBotKit's: a request at fault gets an HTTP error before
    it starts; a model that fails or a limit that is reached is an `error` line ending a 200
    (which the Python SDK reads as an item; an error status on a stream it cannot read)."""
    if not wants_stream(request):
        return shape(await collect_reply(events))
    return jsonl(_lines(await opening(events, _the_requests_fault), events, shape))


def _activity(event: ToolReturned) -> dict[str, Any]:
    stored = event.outcome.stored()
    told = stored.get("result") if "result" in stored else {"error": stored["error"]}
    arguments = json.dumps(stored["arguments"], ensure_ascii=False)
    text = f"{stored['name']}({arguments}) → {json.dumps(told, ensure_ascii=False)}"
    return {"type": "activity", "text": text, "meta": {"toolCall": stored}}


async def _lines(first: ChatEvent | None, events: AsyncIterator[ChatEvent], shape: Any) -> AsyncIterator[str]:
    async with aclosing(events):  # type: ignore[type-var]
        event = first
        while event is not None:
            if isinstance(event, Token) and event.text:
                yield line("token", {"token": event.text})
            elif isinstance(event, ToolReturned):
                # ChatBotKit tells of a function the bot ran as an activity message.
                yield line("message", _activity(event))
            elif isinstance(event, Failed):
                _, body = error_body(event.error)
                yield line("error", body)
                return
            elif isinstance(event, Done):
                yield line("message", {"type": "bot", "text": event.text})
                yield line(
                    "usage",
                    {
                        "model": event.model,
                        "inputTokensUsed": event.usage.prompt_tokens,
                        "outputTokensUsed": event.usage.completion_tokens,
                    },
                )
                yield line("result", shape(event))
                return
            event = await anext(events, None)


@router.post("/complete")
async def complete(
    request: Request, principal: Caller, session: SessionDep, runtime: RuntimeDep, body: dict = Body
) -> Any:
    """A stateless reply to the client's messages; nothing is stored."""
    clean(body, "body")
    given = _messages(body.get("messages"))
    continuations = _continuations(body)
    if not given or given[-1][0] != "user":
        raise Invalid("messages must end with a message of type user", {"field": "messages"})
    turns = [ChatTurn("system", str(body["backstory"]))] if isinstance(body.get("backstory"), str) else []
    turns += [
        ChatTurn("user" if kind == "user" else ("assistant" if kind == "bot" else "system"), text)
        for kind, text in given
    ]
    bot_id, model = None, None
    if body.get("botId") is not None:
        bot_id = (await reachable_bot(session, principal, body["botId"])).id
    elif isinstance(body.get("model"), str) and body["model"]:
        model = chat_choice(body["model"], runtime.models.local_models())
    else:
        default = runtime.models.default_chat
        model = ModelChoice(default.provider, default.model_id, "chat")
    events = runtime.chat.complete(
        principal, Completion(turns=turns, bot_id=bot_id, model=model, continuations=continuations)
    )
    return await _answer(request, events, lambda done: _result(done, stored=False))


@router.post("/{conversation_id}/complete")
async def complete_in_conversation(
    conversation_id: str,
    request: Request,
    principal: Caller,
    session: SessionDep,
    runtime: RuntimeDep,
    body: dict = Body,
) -> Any:
    """The bot's reply to `text` (stored with it), or without `text` to the user's message
    stored last."""
    clean(body, "body")
    text = _text(body, required=False)
    continuations = _continuations(body)
    await conversations.get_conversation(session, principal, conversation_id)
    question = Question(text) if text is not None else None
    events = runtime.chat.reply(principal, conversation_id, question, continuations=continuations)
    return await _answer(request, events, lambda done: _result(done, stored=True))


@router.post("/{conversation_id}/send")
async def send(
    conversation_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    """Stores the user's message without answering it (`receive` answers)."""
    clean(body, "body")
    text = _text(body, required=True)
    assert text is not None
    message = await conversations.add_message(
        session, principal, conversation_id, "user", text, metadata={"cbk_type": "user"}
    )
    return {"id": message.id, "entities": []}


@router.post("/{conversation_id}/receive")
async def receive(
    conversation_id: str, request: Request, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Any:
    """The bot's reply to the user's message stored last."""
    await conversations.get_conversation(session, principal, conversation_id)
    events = runtime.chat.reply(principal, conversation_id, None)

    def shape(done: Done) -> dict[str, Any]:
        assert done.reply is not None
        return {
            "id": done.reply.id,
            "text": done.text,
            "usage": {"token": done.usage.prompt_tokens + done.usage.completion_tokens},
        }

    return await _answer(request, events, shape)


# --- messages and ratings -------------------------------------------------------------------


@router.post("/{conversation_id}/message/create")
async def create_message(
    conversation_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    [(kind, text)] = _messages([{"type": body.get("type"), "text": body.get("text")}], "message")
    meta = {
        "cbk_type": kind,
        **({"cbk": given_meta(body)} if isinstance(body.get("meta"), dict) else {}),
    }
    message = await conversations.add_message(
        session, principal, conversation_id, ROLE_OF.get(kind, "system"), text, metadata=meta
    )
    return {"id": message.id}


@router.get("/{conversation_id}/message/{message_id}/fetch")
async def fetch_message(
    conversation_id: str, message_id: str, principal: Caller, session: SessionDep
) -> dict[str, Any]:
    return message_public(await conversations.get_message(session, principal, conversation_id, message_id))


@router.post("/{conversation_id}/message/{message_id}/update")
async def update_message(
    conversation_id: str, message_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    message = await conversations.get_message(session, principal, conversation_id, message_id)
    text = _text(body, required=False)
    meta = merged_meta(message.meta.get("cbk", {}), body)
    metadata = {**message.meta, "cbk": meta} if meta is not None else None
    await conversations.update_message(session, principal, conversation_id, message_id, text, metadata)
    return {"id": message_id}


@router.post("/{conversation_id}/message/{message_id}/delete")
async def delete_message(
    conversation_id: str, message_id: str, principal: Caller, session: SessionDep
) -> dict[str, Any]:
    await conversations.delete_message(session, principal, conversation_id, message_id)
    return {"id": message_id}


def _rating(body: dict[str, Any], sign: int) -> dict[str, Any]:
    value = body.get("value", 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Invalid("value must be a positive number", {"field": "value"})
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 4000):
        raise Invalid("reason must be text", {"field": "reason"})
    return {"value": sign * (value or 1), **({"reason": reason} if reason else {})}


async def _rate_conversation(
    conversation_id: str, principal: Any, session: Any, body: dict[str, Any], sign: int
) -> dict[str, Any]:
    clean(body, "body")
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    metadata = {**conversation.meta, "rating": _rating(body, sign)}
    await conversations.update_conversation(session, principal, conversation.id, {"metadata": metadata})
    return {"id": conversation.id}


async def _rate_message(
    conversation_id: str, message_id: str, principal: Any, session: Any, body: dict[str, Any], sign: int
) -> dict[str, Any]:
    clean(body, "body")
    message = await conversations.get_message(session, principal, conversation_id, message_id)
    metadata = {**message.meta, "rating": _rating(body, sign)}
    await conversations.update_message(session, principal, conversation_id, message_id, metadata=metadata)
    return {"id": message_id}


@router.post("/{conversation_id}/upvote")
async def upvote(
    conversation_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    return await _rate_conversation(conversation_id, principal, session, body, 1)


@router.post("/{conversation_id}/downvote")
async def downvote(
    conversation_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    return await _rate_conversation(conversation_id, principal, session, body, -1)


@router.post("/{conversation_id}/message/{message_id}/upvote")
async def upvote_message(
    conversation_id: str, message_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    return await _rate_message(conversation_id, message_id, principal, session, body, 1)


@router.post("/{conversation_id}/message/{message_id}/downvote")
async def downvote_message(
    conversation_id: str, message_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    return await _rate_message(conversation_id, message_id, principal, session, body, -1)
