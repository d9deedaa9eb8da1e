"""The request-human tool (Agent v2's): hands the conversation to a person — it is marked
unresolved with a person asked for, so that an operator's list shows it (core.handoff)."""

from typing import Any

from tertulia.core import handoff
from tertulia.core.tools.base import ToolContext, ToolFailed, ToolSpec

SPEC = ToolSpec(
    id="request-human",
    name="Request a person",
    description="Hands the conversation to a person from the team, who answers in it.",
    category="support",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    config_schema={},
    # An explicit request for a person (en, es, pt, zh) calls it; the bot then says so.
    read_arguments=lambda text: {} if handoff.asks_for_human(text) else None,
    answer=handoff.HANDOFF_REPLY,
)


async def run(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    if context.conversation_id is None:
        raise ToolFailed("there is no conversation to hand over")
    async with context.database.session() as session:
        conversation = await handoff.request_human(session, context.actor, context.conversation_id)
    return {"handed_over": True, "status": conversation.status}
