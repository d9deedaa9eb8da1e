"""The datastore tool (Agent v2's): a search of the bot's knowledge bases.

A bot with knowledge is searched before every answer anyway (the chat engine's retrieval);
this tool is for a model that wants to look something else up on its own."""

from typing import Any

from tertulia.core.tools.base import ToolContext, ToolSpec

SPEC = ToolSpec(
    id="datastore",
    name="Datastore search",
    description="Searches the bot's knowledge bases and returns the passages that match.",
    category="knowledge",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 2000}},
        "required": ["query"],
        "additionalProperties": False,
    },
    config_schema={},
)


async def run(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    sources = await context.retriever.for_bot(context.bot, str(arguments["query"]))
    return {
        "passages": [
            {"text": source.content, "source": source.document_name, "score": round(source.score, 4)}
            for source in sources
        ]
    }
