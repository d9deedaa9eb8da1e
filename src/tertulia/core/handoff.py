"""Lead capture and handing a conversation to a person (Agent v2's `lead-capture` and
`request-human` tools, as a bot's plugins).

A contact is kept in the conversation's metadata (`contact`), merged field by field as it
arrives: from the client (Agent v2's `contact`), or, with lead capture on, from what the
visitor writes (an email address, a phone number). Once it has an email address or a phone
number it is also one of the account's contacts (core.contacts, known by that address), and
the conversation is linked to it, so every face's contact list shows the lead.

A request for a person marks the conversation `human_requested` and `unresolved`, so that
an operator's list shows it.

Both tools (core.tools.lead_capture, core.tools.request_human) read the visitor's message
themselves, with no model: an email or phone number in it is captured, and an explicit
request for a person, in English, Spanish, Portuguese or Chinese, is a handoff, which the
bot answers with HANDOFF_REPLY.
"""

import re
from contextlib import suppress
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import contacts
from tertulia.core.conversations import add_message, get_conversation
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.principal import Principal
from tertulia.store.tables import Conversation, Message, utcnow

CONTACT_FIELDS = {"email": 320, "firstName": 128, "lastName": 128, "phoneNumber": 64}
HANDOFF_REPLY = "I have asked a person from our team to join this conversation; they will answer here."

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{6,}\d")
_HUMAN = re.compile(
    r"\b(human|real person|a person|someone real|live agent|operator|"
    r"humano|una persona|persona real|un agente|operador|atendente|pessoa)\b|人工|真人|客服",
    re.IGNORECASE,
)
_ASKING = re.compile(
    r"\b(talk|speak|chat|connect|transfer|want|need|hablar|quiero|necesito|comunicar|pasar|falar|quero)\b"
    r"|转|找|要",
    re.IGNORECASE,
)


def contact_in(text: str) -> dict[str, str]:
    """The email address and phone number a visitor wrote, if any."""
    found: dict[str, str] = {}
    if email := _EMAIL.search(text):
        found["email"] = email.group(0)
    for candidate in _PHONE.finditer(_EMAIL.sub(" ", text)):
        number = re.sub(r"[\s().-]", "", candidate.group(0))
        # "+" and 7 digits or more, else 9 or more: dates and order numbers are not phones.
        if len(number.lstrip("+")) >= (7 if number.startswith("+") else 9):
            found["phoneNumber"] = number
            break
    return found


def asks_for_human(text: str) -> bool:
    return bool(_HUMAN.search(text) and _ASKING.search(text))


def check_contact(contact: dict[str, Any]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for name, value in contact.items():
        if value is None:
            continue
        if name not in CONTACT_FIELDS:
            raise Invalid(f"unknown contact field {name!r}", {"field": f"contact.{name}"})
        if not isinstance(value, str) or len(value) > CONTACT_FIELDS[name]:
            raise Invalid(f"contact.{name} must be text of at most {CONTACT_FIELDS[name]} characters")
        if name == "email" and value and not _EMAIL.fullmatch(value):
            raise Invalid("contact.email is not an email address", {"field": "contact.email"})
        if value.strip():
            clean[name] = value.strip()
    return clean


async def keep_contact(
    session: AsyncSession, actor: Principal, conversation_id: str, contact: dict[str, str]
) -> Conversation:
    """Merges `contact` into the conversation's; later values win field by field."""
    conversation = await get_conversation(session, actor, conversation_id)
    if contact:
        merged = {**conversation.meta.get("contact", {}), **contact}
        conversation.meta = {**conversation.meta, "contact": merged}
        conversation.updated_at = utcnow()
        await session.commit()
        if actor.bot_id is None:  # a key bound to one bot does not reach the account's contacts
            await link_contact(session, actor, conversation, merged)
    return conversation


async def link_contact(
    session: AsyncSession, actor: Principal, conversation: Conversation, contact: dict[str, str]
) -> None:
    """The conversation's contact brought up to date with the lead; without one yet, the
    account's contact known by the lead's email (else phone), made if need be, and linked."""
    fingerprint = contact.get("email", "").lower() or contact.get("phoneNumber")
    if not fingerprint:
        return
    name = " ".join(part for part in (contact.get("firstName"), contact.get("lastName")) if part)
    details = {"email": contact.get("email"), "phone": contact.get("phoneNumber"), "name": name or None}
    known = None
    if conversation.contact_id is not None:
        with suppress(NotFound):
            known = await contacts.get_contact(session, actor, conversation.contact_id)
    if known is None:
        known = await contacts.ensure_contact(session, actor, {"fingerprint": fingerprint, **details})
    changed = {field: value for field, value in details.items() if value and getattr(known, field) != value}
    if changed:
        known = await contacts.update_contact(session, actor, known.id, changed)
    if conversation.contact_id != known.id:
        conversation.contact_id = known.id
        await session.commit()


async def request_human(session: AsyncSession, actor: Principal, conversation_id: str) -> Conversation:
    conversation = await get_conversation(session, actor, conversation_id)
    conversation.status = "unresolved"
    conversation.meta = {**conversation.meta, "human_requested": True}
    conversation.updated_at = utcnow()
    await session.commit()
    return conversation


def held_by(conversation: Conversation) -> str | None:
    """The name of the person who holds the conversation (the bot stays quiet), if any."""
    operator = (conversation.meta or {}).get("operator")
    return operator.get("name") if isinstance(operator, dict) else None


def _operator_name(actor: Principal, name: str | None) -> str:
    account = actor.account
    return (name or "").strip()[:128] or account.nickname or account.username


async def take_over(
    session: AsyncSession, actor: Principal, conversation_id: str, name: str | None = None
) -> Conversation:
    """A person holds the conversation from now on: the bot stays quiet, and the request for a
    person (if there was one) is answered."""
    actor.require("conversations:write")
    actor.require_not_visitor("take a conversation over")
    conversation = await get_conversation(session, actor, conversation_id)
    operator = {
        "name": _operator_name(actor, name),
        "account_id": actor.account_id,
        "since": utcnow().isoformat(),
    }
    meta = {key: value for key, value in conversation.meta.items() if key != "human_requested"}
    conversation.meta = {**meta, "operator": operator}
    if conversation.status == "resolved":
        conversation.status = "unresolved"
    conversation.updated_at = utcnow()
    await session.commit()
    return conversation


async def hand_back(session: AsyncSession, actor: Principal, conversation_id: str) -> Conversation:
    """The bot answers again; the conversation is open and nobody is waited for."""
    actor.require("conversations:write")
    actor.require_not_visitor("hand a conversation back")
    conversation = await get_conversation(session, actor, conversation_id)
    conversation.meta = {
        key: value for key, value in conversation.meta.items() if key not in ("human_requested", "operator")
    }
    conversation.status = "open"
    conversation.updated_at = utcnow()
    await session.commit()
    return conversation


async def operator_reply(
    session: AsyncSession, actor: Principal, conversation_id: str, content: str, name: str | None = None
) -> Message:
    """A person's answer in the conversation; answering takes it over if nobody held it."""
    actor.require_not_visitor("answer as a person")
    if not content.strip():
        raise Invalid("content must not be empty", {"field": "content"})
    conversation = await get_conversation(session, actor, conversation_id)
    if held_by(conversation) is None:
        conversation = await take_over(session, actor, conversation.id, name)
    holder = conversation.meta["operator"]
    if not name and holder.get("account_id") == actor.account_id:
        name = holder.get("name")  # the name they took it over with
    return await add_message(
        session,
        actor,
        conversation.id,
        "operator",
        content,
        metadata={"sender_id": actor.account_id, "sender_name": _operator_name(actor, name)},
    )
