"""What a bot can use: known model providers, task types and tools, and task routing."""

from dataclasses import dataclass

from tertulia.core.errors import Invalid
from tertulia.store.tables import Bot

# Providers Tertulia can talk to. "local" runs in-process and needs no key or network.
PROVIDERS = ("local", "openai", "openai-compatible", "anthropic", "google")

# Task type → the kind of model that serves it.
TASK_KINDS = {
    "chat": "llm",
    "summarise": "llm",
    "related_prompts": "llm",
    "vision": "llm",
    "embedding": "embedding",
    "rerank": "rerank",
    "transcription": "transcription",
}

# Tools a bot can have switched on (plugins in ChatAgent's words).
TOOLS = ("calculator", "weather", "datastore", "lead-capture", "request-human")


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model_id: str
    task_type: str


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise Invalid(
            f"unknown model provider {provider!r}",
            {"field": "provider", "allowed": list(PROVIDERS)},
        )
    return provider


def check_tools(tools: list[str]) -> list[str]:
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        raise Invalid("unknown plugins", {"field": "plugins", "unknown": unknown, "allowed": list(TOOLS)})
    return list(dict.fromkeys(tools))  # keeps order, drops repeats


def check_choice(choice: ModelChoice) -> ModelChoice:
    check_provider(choice.provider)
    if choice.task_type not in TASK_KINDS:
        raise Invalid(
            f"unknown task type {choice.task_type!r}",
            {"field": "task_type", "allowed": list(TASK_KINDS)},
        )
    if not choice.model_id.strip():
        raise Invalid("model id must not be empty", {"field": "model_id"})
    return choice


def route(bot: Bot, task_type: str) -> ModelChoice | None:
    """The bot's own choice for a task type; chat falls back to the bot's llm settings.

    None means: use the account's or the server's default (resolved by the providers layer).
    """
    for spec in bot.models:
        if spec.task_type == task_type:
            return ModelChoice(spec.provider, spec.model_id, task_type)
    if task_type == "chat" and bot.llm_model:
        return ModelChoice(bot.llm_provider, bot.llm_model, "chat")
    return None
