"""ChatAgent's WebSocket: /api/v1/ws/conversations/{id}?token=…

The client sends {"type": "user_message", "content": …}; the server streams
{"type": "stream_chunk", …} pieces, then {"type": "stream_complete", …} and, for a client
that asked with "stream": false, one {"type": "bot_response", …}. A bot that uses one of its
tools first sends {"type": "tool_call", "tool_call": {id, name, arguments}} and
{"type": "tool_result", id, name, arguments, result | error}. {"type": "ping"} gets a
pong; an idle socket gets a heartbeat. A bad credential closes the socket with 1008.

Once admitted, a socket is also told of every message stored in its conversation by anyone
else (a REST call, another socket, another face, an operator, another server process sharing
Redis) as {"type": "new_message", "conversation_id": …, "message": {…the REST message shape…}},
and of a new status (a person asked for, the conversation resolved …) as
{"type": "conversation_status", "conversation_id": …, "status": …, "human_requested": …,
"operator": …}. While a person holds the conversation (core.handoff) a user_message is kept
for them and answered with {"type": "conversation_held", "operator": …} instead of a reply.
"""

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from contextlib import aclosing, suppress
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from tertulia.core.accounts import authenticate_token
from tertulia.core.chat import Done, Failed, Held, Question, Token, ToolCalled, ToolReturned
from tertulia.core.conversation_events import ConversationEvent, MessageAdded, StatusChanged
from tertulia.core.conversations import get_conversation
from tertulia.core.errors import Invalid, TertuliaError, Unauthenticated
from tertulia.core.monitoring import bind_account
from tertulia.core.principal import Principal
from tertulia.faces.chatagent.conversations import FROM_CORE_STATUS, SENDER_TYPES
from tertulia.faces.chatagent.errors import CODES
from tertulia.runtime import Runtime
from tertulia.store.tables import utcnow

router = APIRouter(prefix="/ws", tags=["websocket"])

Send = Callable[[dict[str, Any]], Awaitable[None]]


def _timestamp() -> str:
    return utcnow().isoformat().replace("+00:00", "Z")


def _error_frame(error: TertuliaError) -> dict[str, Any]:
    _status, code = CODES.get(error.kind, (500, "INTERNAL_ERROR"))
    return {
        "type": "error",
        "error": {"code": code, "message": error.message, "details": error.details},
        "timestamp": _timestamp(),
    }


def _event_frame(event: ConversationEvent, bot_id: str) -> dict[str, Any]:
    if isinstance(event, StatusChanged):
        return {
            "type": "conversation_status",
            "conversation_id": event.conversation_id,
            "status": FROM_CORE_STATUS[event.status],
            "human_requested": event.human_requested,
            "operator": event.operator,
            "timestamp": _timestamp(),
        }
    return _new_message_frame(event, bot_id)


def _new_message_frame(event: MessageAdded, bot_id: str) -> dict[str, Any]:
    from_bot = event.role == "assistant"
    return {
        "type": "new_message",
        "conversation_id": event.conversation_id,
        "message": {
            "id": event.message_id,
            "conversation_id": event.conversation_id,
            "content": event.content,
            "message_type": event.message_type,
            "sender_type": SENDER_TYPES.get(event.role, event.role),
            "sender_id": bot_id if from_bot else event.meta.get("sender_id", event.account_id),
            "created_at": event.created_at.replace("+00:00", "Z"),
            "metadata": event.meta,
        },
        "timestamp": _timestamp(),
    }


async def _tell_others(
    send: Send, queue: "asyncio.Queue[ConversationEvent]", origin: str, bot_id: str
) -> None:
    try:
        while True:
            event = await queue.get()
            if event.origin != origin:
                await send(_event_frame(event, bot_id))
    except (WebSocketDisconnect, RuntimeError):  # the client left; the receiving loop ends too
        return


async def _admit(runtime: Runtime, token: str | None, conversation_id: str) -> tuple[Principal, str]:
    """The principal the token names, and the bot of the conversation it may watch."""
    if not token:
        raise Unauthenticated("missing token")
    async with runtime.database.session() as session:
        principal = await authenticate_token(session, token, runtime.secret)
        if not principal.allows_route(f"/api/v1/ws/conversations/{conversation_id}"):
            raise Unauthenticated("this key is limited to other routes")
        conversation = await get_conversation(session, principal, conversation_id)
    bind_account(principal.account_id)  # the socket's log lines are this account's
    return principal, conversation.bot_id


async def _answer(
    send: Send,
    runtime: Runtime,
    principal: Principal,
    conversation_id: str,
    frame: dict[str, Any],
    origin: str,
) -> None:
    content = frame.get("content")
    if not isinstance(content, str):
        await send(_error_frame(Invalid("content must be a string", {"field": "content"})))
        return
    try:
        await runtime.rate_limiter.hit_account(principal.account_id, principal.account.plan)
    except TertuliaError as error:
        await send(_error_frame(error))
        return
    streaming = frame.get("stream", True) is not False
    question = Question(content, str(frame.get("message_type") or "text"), origin=origin)
    chunk_id = 0
    async with aclosing(runtime.chat.reply(principal, conversation_id, question)) as events:
        async for event in events:
            if isinstance(event, Token) and streaming:
                chunk_id += 1
                await send(
                    {
                        "type": "stream_chunk",
                        "conversation_id": conversation_id,
                        "chunk_id": chunk_id,
                        "content": event.text,
                        "is_final": False,
                    }
                )
            elif isinstance(event, ToolCalled):
                call = event.call
                await send(
                    {
                        "type": "tool_call",
                        "conversation_id": conversation_id,
                        "tool_call": {"id": call.id, "name": call.name, "arguments": call.arguments},
                    }
                )
            elif isinstance(event, ToolReturned):
                await send(
                    {"type": "tool_result", "conversation_id": conversation_id, **event.outcome.stored()}
                )
            elif isinstance(event, Failed):
                await send(_error_frame(event.error))
            elif isinstance(event, Held):
                await send(
                    {
                        "type": "conversation_held",
                        "conversation_id": conversation_id,
                        "operator": event.operator,
                        "user_message_id": event.user_message.id if event.user_message else None,
                        "timestamp": _timestamp(),
                    }
                )
            elif isinstance(event, Done):
                if streaming:
                    await send(
                        {
                            "type": "stream_complete",
                            "conversation_id": conversation_id,
                            "message_id": event.reply.id,
                            "user_message_id": event.user_message.id,
                            "full_content": event.reply.content,
                            "usage": {
                                "prompt_tokens": event.usage.prompt_tokens,
                                "completion_tokens": event.usage.completion_tokens,
                            },
                            "related_prompts": event.related_prompts,
                            "sources": event.reply.meta.get("sources", []),
                        }
                    )
                else:
                    await send(
                        {
                            "type": "bot_response",
                            "message_id": event.reply.id,
                            "conversation_id": conversation_id,
                            "content": event.reply.content,
                            "message_type": event.reply.message_type,
                            "timestamp": _timestamp(),
                            "related_prompts": event.related_prompts,
                        }
                    )


@router.websocket("/conversations/{conversation_id}")
async def conversation_socket(websocket: WebSocket, conversation_id: str, token: str | None = None) -> None:
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    bearer = websocket.headers.get("authorization", "")
    token = token or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
    try:
        principal, bot_id = await _admit(runtime, token, conversation_id)
    except TertuliaError as error:
        await websocket.send_json(_error_frame(error))
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=error.message[:120])
        return
    heartbeat = runtime.settings.websocket_heartbeat_seconds
    # Frames from the reply stream and from other people's messages never interleave.
    sending = asyncio.Lock()

    async def send(frame: dict[str, Any]) -> None:
        async with sending:
            await websocket.send_json(frame)

    origin = secrets.token_hex(8)
    events = runtime.events.watch(conversation_id)
    teller = asyncio.create_task(_tell_others(send, events, origin, bot_id))
    try:
        while True:
            try:
                text = await asyncio.wait_for(websocket.receive_text(), timeout=heartbeat)
            except TimeoutError:
                await send({"type": "heartbeat", "timestamp": _timestamp()})
                continue
            try:
                frame = json.loads(text)
            except json.JSONDecodeError:
                frame = None
            if not isinstance(frame, dict):
                await send(_error_frame(Invalid("each frame must be a JSON object")))
                continue
            kind = frame.get("type")
            if kind == "ping":
                await send({"type": "pong", "timestamp": _timestamp()})
            elif kind == "user_message":
                await _answer(send, runtime, principal, conversation_id, frame, origin)
            else:
                await send(_error_frame(Invalid(f"unknown frame type {kind!r}", {"field": "type"})))
    except WebSocketDisconnect:
        return
    finally:
        runtime.events.unwatch(conversation_id, events)
        teller.cancel()
        with suppress(asyncio.CancelledError):
            await teller
