"""What every tool is: a spec (what it does, its arguments as JSON Schema, its settings) and
an async `run`. A tool is one module of this package holding `SPEC` and `run`."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from tertulia.core.principal import Principal
from tertulia.store.session import Database
from tertulia.store.tables import Bot

if TYPE_CHECKING:
    from tertulia.core.knowledge.retrieval import Retriever


class ToolFailed(Exception):
    """The tool could not do what it was asked; the message is told to the model and the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ToolSpec:
    id: str
    name: str
    description: str
    category: str
    # JSON Schema of the arguments; a `pattern` on a string keeps a small model's calls usable.
    parameters: dict[str, Any]
    # The settings a bot's owner gives it, in ChatAgent's shape: {key: {type, required, description}}.
    config_schema: dict[str, dict[str, Any]]
    # Words in a question that make the tool worth offering to a model without native tool
    # calls (the small local one); None: never offered that way.
    asked_by: re.Pattern[str] | None = None
    # For a tool that needs no model to call it: its arguments read from the question, or
    # None when the question does not call for it (lead capture reads contact details).
    read_arguments: Callable[[str], dict[str, Any] | None] | None = None
    # What the bot answers, with no model call, once the tool has run (a handoff's reply).
    answer: str | None = None
    version: str = "1.0.0"
    author: str = "Tertulia"


@dataclass
class ToolContext:
    actor: Principal
    bot: Bot
    conversation_id: str | None
    config: dict[str, Any]
    http: httpx.AsyncClient
    database: Database
    retriever: "Retriever"
    options: dict[str, Any] = field(default_factory=dict)  # server settings a tool reads


Run = Callable[[ToolContext, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: Run
