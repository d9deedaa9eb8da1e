"""ChatBotKit contacts: list, create, ensure (by fingerprint), fetch, update, delete, and a
contact's conversations."""

from typing import Any

from fastapi import APIRouter, Depends, Request

from tertulia.core import contacts
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.bots import Body
from tertulia.faces.chatbotkit.common import (
    Caller,
    Paging,
    given_meta,
    merged_meta,
    ms,
    page_response,
)
from tertulia.faces.chatbotkit.conversations import CONTACT_FIELDS as FIELDS
from tertulia.faces.chatbotkit.conversations import conversation_public
from tertulia.faces.deps import SessionDep
from tertulia.faces.inputs import clean
from tertulia.store.tables import Contact, Conversation

router = APIRouter(prefix="/contact", tags=["chatbotkit"])


def contact_public(contact: Contact) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": contact.id,
        "createdAt": ms(contact.created_at),
        "updatedAt": ms(contact.updated_at),
        "fingerprint": contact.fingerprint,
        "meta": contact.meta or {},
    }
    body.update({name: getattr(contact, name) for name in FIELDS[1:] if getattr(contact, name) is not None})
    return body


def _values(body: dict[str, Any]) -> dict[str, Any]:
    clean(body, "body")
    return {name: body[name] for name in FIELDS if body.get(name) is not None}


@router.get("/list")
async def list_contacts(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("conversations:read")
    items = [contact_public(row) for row in await paging.page(session, owned(principal, Contact), Contact)]
    return page_response(request, items)


@router.post("/create")
async def create_contact(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    values = {**_values(body), "meta": given_meta(body)}
    return {"id": (await contacts.create_contact(session, principal, values)).id}


@router.post("/ensure")
async def ensure_contact(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    values = {**_values(body), "meta": given_meta(body)}
    return {"id": (await contacts.ensure_contact(session, principal, values)).id}


@router.get("/{contact_id}/fetch")
async def fetch_contact(contact_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return contact_public(await contacts.get_contact(session, principal, contact_id))


@router.post("/{contact_id}/update")
async def update_contact(
    contact_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    contact = await contacts.get_contact(session, principal, contact_id)
    values = _values(body)
    meta = merged_meta(contact.meta or {}, body)
    if meta is not None:
        values["meta"] = meta
    await contacts.update_contact(session, principal, contact.id, values)
    return {"id": contact.id}


@router.post("/{contact_id}/delete")
async def delete_contact(contact_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    await contacts.delete_contact(session, principal, contact_id)
    return {"id": contact_id}


@router.get("/{contact_id}/conversation/list")
async def list_contact_conversations(
    contact_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    contact = await contacts.get_contact(session, principal, contact_id)
    query = owned(principal, Conversation).where(Conversation.contact_id == contact.id)
    items = [conversation_public(row) for row in await paging.page(session, query, Conversation)]
    return page_response(request, items)
