"""ChatBotKit sessions (docs/chatbotkit-face.md §2.2): short-lived tokens a page or a
sub-account can hold without the account's key.

- `conversation/{id}/session/create`: a token for that one conversation — complete, send,
  receive and rating its messages, nothing else (not even fetching it).
- `bot/{id}/session/create`: starts a conversation with the bot and returns such a token.
- `user/{id}/session/create` (and `partner/user/…`): a token acting as the sub-account,
  limited to `config.allowedRoutes` when given.

A session is a key of kind "session": it expires, never lists with the keys, and cannot
make keys or sessions itself.
"""

import secrets
from typing import Any

from fastapi import APIRouter

from tertulia.core import accounts, contacts, conversations
from tertulia.core.accounts import IssuedKey, Principal
from tertulia.core.errors import Invalid
from tertulia.faces.chatbotkit.accounts import allowed_routes, both_paths
from tertulia.faces.chatbotkit.bots import Body, reachable_bot
from tertulia.faces.chatbotkit.common import Caller, ms
from tertulia.faces.chatbotkit.conversations import start_conversation
from tertulia.faces.deps import SessionDep
from tertulia.faces.inputs import clean

router = APIRouter(tags=["chatbotkit"])

CONVERSATION_SECONDS = 3600
USER_SECONDS = 900
# What answering in a conversation reads and writes; the routes keep the session to its one
# conversation, the bot binding to its bot's rows.
CHAT_SCOPES = ["bots:read", "conversations:read", "conversations:write", "knowledge:read"]


def conversation_routes(conversation_id: str) -> list[str]:
    """What a conversation session may call, as ChatBotKit's own verifier allows it."""
    here = f"conversation/{conversation_id}"
    return [
        f"{here}/complete",
        f"{here}/send",
        f"{here}/receive",
        f"{here}/message/*/upvote",
        f"{here}/message/*/downvote",
    ]


def _seconds(body: dict[str, Any], default: int) -> int:
    value = body.get("durationInSeconds")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise Invalid("durationInSeconds must be a whole number of seconds", {"field": "durationInSeconds"})
    return int(value)


def _issued(subject: str, issued: IssuedKey) -> dict[str, Any]:
    return {"id": subject, "token": issued.secret, "expiresAt": ms(issued.key.expires_at)}


async def _conversation_session(
    session: Any, principal: Principal, conversation_id: str, bot_id: str, seconds: int
) -> IssuedKey:
    return await accounts.create_session(
        session,
        principal,
        seconds,
        conversation_routes(conversation_id),
        bot_id=bot_id,
        scopes=CHAT_SCOPES,
    )


@router.post("/conversation/{conversation_id}/session/create")
async def create_conversation_session(
    conversation_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    seconds = _seconds(body, CONVERSATION_SECONDS)
    conversation = await conversations.get_conversation(session, principal, conversation_id)
    issued = await _conversation_session(session, principal, conversation.id, conversation.bot_id, seconds)
    return _issued(conversation.id, issued)


@router.post("/bot/{bot_id}/session/create")
async def create_bot_session(
    bot_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    """A new conversation with the bot (with the contact and opening messages given), and a
    session for it."""
    clean(body, "body")
    seconds = _seconds(body, CONVERSATION_SECONDS)
    bot = await reachable_bot(session, principal, bot_id)
    opening = {name: body[name] for name in ("messages", "meta") if name in body}
    if body.get("contact") is not None:
        opening["contactId"] = _contact(body["contact"])
    conversation, given = await start_conversation(session, principal, bot.id, opening)
    issued = await _conversation_session(session, principal, conversation.id, bot.id, seconds)
    reply = {**_issued(bot.id, issued), "conversationId": conversation.id}
    if given:
        reply["messages"] = [{"type": kind, "text": text} for kind, text in given]
    return reply


def _contact(given: Any) -> dict[str, Any]:
    """A bot session's `contact` ({name, email, phone}) as a contact to ensure: known by its
    email or phone when it has one, a new contact otherwise."""
    if not isinstance(given, dict):
        raise Invalid("contact must be an object", {"field": "contact"})
    values = {name: given[name] for name in contacts.FIELDS if given.get(name) is not None}
    values.setdefault("fingerprint", values.get("email") or values.get("phone") or secrets.token_hex(12))
    return values


async def create_user_session(
    user_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    clean(body, "body")
    seconds = _seconds(body, USER_SECONDS)
    await accounts.get_sub_account(session, principal, user_id)  # another's user: not found
    child = await accounts.act_as(session, principal, user_id)
    scopes = sorted(principal.scopes) if principal.scopes is not None else None
    issued = await accounts.create_session(session, child, seconds, allowed_routes(body), scopes=scopes)
    return _issued(issued.key.id, issued)


for path in both_paths("/{user_id}/session/create"):
    router.add_api_route(
        path, create_user_session, methods=["POST"], include_in_schema=path.startswith("/partner")
    )
