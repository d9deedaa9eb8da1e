"""Conversations and their messages, always within the caller's account."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.bots import get_bot
from tertulia.core.contacts import get_contact
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.paging import Page, count_rows
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.store.tables import Contact, Conversation, Message, utcnow

STATUSES = ("open", "resolved", "unresolved")
ROLES = ("user", "assistant", "system", "tool", "operator")
LENGTHS = {"title": 256, "platform": 32, "platform_chat_id": 256, "visitor_id": 128}


@dataclass(frozen=True)
class ConversationDraft:
    bot_id: str
    title: str = ""
    platform: str = "web"
    platform_chat_id: str | None = None
    visitor_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    contact_id: str | None = None


@dataclass(frozen=True)
class ConversationFilters:
    bot_id: str | None = None
    status: str | None = None
    human_requested: bool | None = None  # True: waiting for a person (core.handoff)


@dataclass(frozen=True)
class ConversationSummary:
    conversation: Conversation
    message_count: int
    last_message_at: datetime | None
    contact: Contact | None = None


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise Invalid(
            f"unknown conversation status {status!r}", {"field": "status", "allowed": list(STATUSES)}
        )
    return status


async def create_conversation(
    session: AsyncSession, actor: Principal, draft: ConversationDraft
) -> Conversation:
    actor.require("conversations:write")
    for name, longest in LENGTHS.items():
        value = getattr(draft, name)
        if value is not None and len(value) > longest:
            raise Invalid(f"{name} has at most {longest} characters", {"field": name})
    bot = await get_bot(session, actor, draft.bot_id)
    if draft.contact_id is not None:
        await get_contact(session, actor, draft.contact_id)  # the account's own, or not found
    await limits.require_room(session, actor, "conversations")
    conversation = Conversation(
        account_id=actor.account_id,
        bot_id=bot.id,
        title=draft.title,
        platform=draft.platform,
        platform_chat_id=draft.platform_chat_id,
        visitor_id=draft.visitor_id,
        meta=draft.metadata,
        contact_id=draft.contact_id,
    )
    session.add(conversation)
    await session.commit()
    return conversation


async def get_conversation(session: AsyncSession, actor: Principal, conversation_id: str) -> Conversation:
    actor.require("conversations:read")
    return await find_owned(
        session, actor, Conversation, Conversation.id == conversation_id, missing="conversation not found"
    )


async def list_conversations(
    session: AsyncSession, actor: Principal, filters: ConversationFilters, limit: int, offset: int
) -> Page[ConversationSummary]:
    actor.require("conversations:read")
    actor.require_not_visitor("list conversations")
    query = owned(actor, Conversation)
    if filters.bot_id is not None:
        query = query.where(Conversation.bot_id == filters.bot_id)
    if filters.status is not None:
        query = query.where(Conversation.status == check_status(filters.status))
    if filters.human_requested is not None:
        asked = Conversation.meta["human_requested"].as_boolean()
        query = query.where(
            asked.is_(True) if filters.human_requested else or_(asked.is_(None), asked.is_(False))
        )
    total = await count_rows(session, query)
    page = list(
        await session.scalars(
            query.order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit).offset(offset)
        )
    )
    stats = await session.execute(
        select(Message.conversation_id, func.count(Message.id), func.max(Message.created_at))
        .where(Message.conversation_id.in_([conversation.id for conversation in page]))
        .group_by(Message.conversation_id)
    )
    by_id = {row[0]: (row[1], row[2]) for row in stats}
    contact_ids = {c.contact_id for c in page if c.contact_id is not None}
    known = {
        contact.id: contact
        for contact in await session.scalars(
            select(Contact).where(Contact.account_id == actor.account_id, Contact.id.in_(contact_ids))
        )
    }
    items = [ConversationSummary(c, *by_id.get(c.id, (0, None)), known.get(c.contact_id or "")) for c in page]
    return Page(items, total, limit, offset)


async def set_status(
    session: AsyncSession, actor: Principal, conversation_id: str, status: str
) -> Conversation:
    actor.require("conversations:write")
    conversation = await get_conversation(session, actor, conversation_id)
    conversation.status = check_status(status)
    if status == "resolved":  # nobody is waited for, and nobody holds it, once it is resolved
        conversation.meta = {
            name: value
            for name, value in conversation.meta.items()
            if name not in ("human_requested", "operator")
        }
    conversation.updated_at = utcnow()
    await session.commit()
    return conversation


async def update_conversation(
    session: AsyncSession, actor: Principal, conversation_id: str, changes: dict[str, Any]
) -> Conversation:
    """Changes a conversation's `title` and `metadata`."""
    actor.require("conversations:write")
    unknown = set(changes) - {"title", "metadata"}
    if unknown:
        raise Invalid("unknown conversation fields", {"unknown": sorted(unknown)})
    conversation = await get_conversation(session, actor, conversation_id)
    if "title" in changes:
        if len(changes["title"]) > LENGTHS["title"]:
            raise Invalid(f"title has at most {LENGTHS['title']} characters", {"field": "title"})
        conversation.title = changes["title"]
    if "metadata" in changes:
        conversation.meta = dict(changes["metadata"])
    conversation.updated_at = utcnow()
    await session.commit()
    return conversation


async def delete_conversation(session: AsyncSession, actor: Principal, conversation_id: str) -> None:
    actor.require("conversations:write")
    conversation = await get_conversation(session, actor, conversation_id)
    await session.delete(conversation)
    await session.commit()


async def add_message(
    session: AsyncSession,
    actor: Principal,
    conversation_id: str,
    role: str,
    content: str,
    token_count: int = 0,
    metadata: dict[str, Any] | None = None,
    message_type: str = "text",
) -> Message:
    actor.require("conversations:write")
    if role not in ROLES:
        raise Invalid(f"unknown message role {role!r}", {"field": "role", "allowed": list(ROLES)})
    conversation = await get_conversation(session, actor, conversation_id)
    await limits.require_room(session, actor, "messages")
    message = Message(
        account_id=actor.account_id,
        conversation_id=conversation.id,
        role=role,
        content=content,
        token_count=token_count,
        message_type=message_type,
        meta=metadata or {},
    )
    session.add(message)
    conversation.updated_at = utcnow()
    await session.commit()
    return message


async def get_message(
    session: AsyncSession, actor: Principal, conversation_id: str, message_id: str
) -> Message:
    conversation = await get_conversation(session, actor, conversation_id)
    message = await session.scalar(
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation.id)
    )
    if message is None:
        raise NotFound("message not found")
    return message


async def update_message(
    session: AsyncSession,
    actor: Principal,
    conversation_id: str,
    message_id: str,
    content: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Changes a stored message's text or metadata (an operator's correction, a rating)."""
    actor.require("conversations:write")
    message = await get_message(session, actor, conversation_id, message_id)
    if content is not None:
        message.content = content
    if metadata is not None:
        message.meta = dict(metadata)
    await session.commit()
    return message


async def delete_message(
    session: AsyncSession, actor: Principal, conversation_id: str, message_id: str
) -> None:
    actor.require("conversations:write")
    message = await get_message(session, actor, conversation_id, message_id)
    await session.delete(message)
    await session.commit()


async def list_messages(
    session: AsyncSession, actor: Principal, conversation_id: str, limit: int, offset: int
) -> Page[Message]:
    conversation = await get_conversation(session, actor, conversation_id)
    query = select(Message).where(
        Message.conversation_id == conversation.id, Message.account_id == actor.account_id
    )
    total = await count_rows(session, query)
    rows = await session.scalars(query.order_by(Message.created_at, Message.id).limit(limit).offset(offset))
    return Page(list(rows), total, limit, offset)
