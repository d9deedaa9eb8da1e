"""The lead-capture tool (Agent v2's): keeps the visitor's contact details on the
conversation, and makes them one of the account's contacts (core.handoff)."""

from typing import Any

from tertulia.core import handoff
from tertulia.core.tools.base import ToolContext, ToolFailed, ToolSpec

SPEC = ToolSpec(
    id="lead-capture",
    name="Lead capture",
    description="Keeps the visitor's name, email address and phone number as a contact.",
    category="sales",
    parameters={
        "type": "object",
        "properties": {
            "email": {"type": "string", "maxLength": handoff.CONTACT_FIELDS["email"]},
            "firstName": {"type": "string", "maxLength": handoff.CONTACT_FIELDS["firstName"]},
            "lastName": {"type": "string", "maxLength": handoff.CONTACT_FIELDS["lastName"]},
            "phoneNumber": {"type": "string", "maxLength": handoff.CONTACT_FIELDS["phoneNumber"]},
        },
        "additionalProperties": False,
    },
    config_schema={},
    # The details are read from the visitor's message (an email address, a phone number).
    read_arguments=lambda text: handoff.contact_in(text) or None,
)


async def run(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    if context.conversation_id is None:
        raise ToolFailed("there is no conversation to keep the contact on")
    contact = handoff.check_contact(arguments)
    if not contact:
        raise ToolFailed("no contact details were given")
    async with context.database.session() as session:
        conversation = await handoff.keep_contact(session, context.actor, context.conversation_id, contact)
    return {"kept": sorted(contact), "contact": conversation.meta.get("contact", {})}
