"""Contacts: the people an account's bots talk to, each known by a fingerprint unique in the
account (an email address, a phone number, a visitor id — whatever the account uses)."""

import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import Conflict, Invalid
from tertulia.core.principal import Principal, find_owned
from tertulia.store.tables import Contact, Conversation, utcnow

FIELDS = {
    "fingerprint": 256,
    "name": 256,
    "nick": 128,
    "email": 320,
    "phone": 64,
    "description": 4000,
    "preferences": 4000,
}


def _check(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - {*FIELDS, "meta"}
    if unknown:
        raise Invalid("unknown contact fields", {"unknown": sorted(unknown)})
    for name, longest in FIELDS.items():
        value = values.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise Invalid(f"{name} must be text of at most {longest} characters", {"field": name})
    if "fingerprint" in values and not (values["fingerprint"] or "").strip():
        raise Invalid("fingerprint must not be empty", {"field": "fingerprint"})
    if "meta" in values and not isinstance(values["meta"], dict):
        raise Invalid("meta must be an object", {"field": "meta"})
    return values


async def create_contact(session: AsyncSession, actor: Principal, values: dict[str, Any]) -> Contact:
    """A new contact; a fingerprint already used in the account is a conflict."""
    actor.require("conversations:write")
    actor.require_any_bot()
    values = _check(dict(values))
    values.setdefault("fingerprint", secrets.token_hex(12))
    contact = Contact(account_id=actor.account_id, **{**values, "meta": values.get("meta") or {}})
    session.add(contact)
    await _commit(session)
    return contact


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise Conflict("a contact with this fingerprint exists", {"field": "fingerprint"}) from error


async def get_contact(session: AsyncSession, actor: Principal, contact_id: str) -> Contact:
    actor.require("conversations:read")
    actor.require_any_bot()
    return await find_owned(session, actor, Contact, Contact.id == contact_id, missing="contact not found")


async def ensure_contact(session: AsyncSession, actor: Principal, values: dict[str, Any]) -> Contact:
    """The contact with this fingerprint, made with these details if there is none yet."""
    fingerprint = values.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint.strip():
        raise Invalid("fingerprint is required", {"field": "fingerprint"})
    actor.require_any_bot()
    found = await session.scalar(
        select(Contact.id).where(Contact.account_id == actor.account_id, Contact.fingerprint == fingerprint)
    )
    if found is not None:
        return await get_contact(session, actor, found)
    try:
        return await create_contact(session, actor, values)
    except Conflict:  # made by a concurrent request just now
        found = await session.scalar(
            select(Contact.id).where(
                Contact.account_id == actor.account_id, Contact.fingerprint == fingerprint
            )
        )
        return await get_contact(session, actor, found)


async def update_contact(
    session: AsyncSession, actor: Principal, contact_id: str, values: dict[str, Any]
) -> Contact:
    actor.require("conversations:write")
    contact = await get_contact(session, actor, contact_id)
    for name, value in _check(dict(values)).items():
        setattr(contact, name, value)
    contact.updated_at = utcnow()
    await _commit(session)
    return contact


async def delete_contact(session: AsyncSession, actor: Principal, contact_id: str) -> None:
    actor.require("conversations:write")
    contact = await get_contact(session, actor, contact_id)
    await session.execute(
        update(Conversation)
        .where(Conversation.account_id == actor.account_id, Conversation.contact_id == contact.id)
        .values(contact_id=None)
    )
    await session.delete(contact)
    await session.commit()
