"""What a bot can use: known model providers, task types and tools, and task routing."""

from dataclasses import dataclass

from tertulia.core.errors import Invalid
from tertulia.store.tables import Bot

# Providers Tertulia can talk to. "local" runs in-process and needs no key or network.
PROVIDERS = ("local", "openai", "openai-compatible", "anthropic", "google")

# Task type → the kind of model that serves it. "general" and "complex" are Bytchat's:
# "general" answers when no "chat" model is routed, "complex" the questions chat_task()
# finds complex.
TASK_KINDS = {
    "chat": "llm",
    "general": "llm",
    "complex": "llm",
    "summarise": "llm",
    "related_prompts": "llm",
    "vision": "llm",
    "embedding": "embedding",
    "rerank": "rerank",
    "transcription": "transcription",
}

# Well-known models of each remote provider, offered (and numbered) once the provider is
# configured on the server or for the account. Any other model id still works by name.
KNOWN_MODELS: dict[str, tuple[tuple[str, str], ...]] = {
    "openai": (
        ("gpt-4o-mini", "chat"),
        ("gpt-4o", "chat"),
        ("gpt-4.1-mini", "chat"),
        ("gpt-4.1", "chat"),
        ("text-embedding-3-small", "embedding"),
        ("text-embedding-3-large", "embedding"),
        ("text-embedding-ada-002", "embedding"),
    ),
    "anthropic": (
        ("claude-3-5-haiku-latest", "chat"),
        ("claude-3-7-sonnet-latest", "chat"),
        ("claude-sonnet-4-0", "chat"),
    ),
    "google": (
        ("gemini-1.5-flash-latest", "chat"),
        ("gemini-2.0-flash", "chat"),
        ("gemini-2.5-flash", "chat"),
        ("text-embedding-004", "embedding"),
    ),
}


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
    """Tools a bot can have switched on (plugins in ChatAgent's words): core.tools' own."""
    from tertulia.core.tools import TOOLS  # the tools import the core; the core checks names only

    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        raise Invalid("unknown plugins", {"field": "plugins", "unknown": unknown, "allowed": sorted(TOOLS)})
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


# A question this long, or asking more than one thing, goes to a bot's "complex" model.
COMPLEX_QUESTION_CHARS = 400


def chat_task(bot: Bot, question: str) -> str:
    """ "complex" when the bot routes complex questions to a model of their own and this one is
    long or asks several things at once; "chat" otherwise."""
    if not any(spec.task_type == "complex" for spec in bot.models):
        return "chat"
    asks = question.count("?") + question.count("？")
    return "complex" if len(question) >= COMPLEX_QUESTION_CHARS or asks >= 2 else "chat"


def route(bot: Bot, task_type: str) -> ModelChoice | None:
    """The bot's own choice for a task type. Chat falls back to a "general" model, then to the
    bot's llm settings; "complex" falls back to what chat would use.

    None means: use the account's or the server's default (resolved by the providers layer).
    """
    for spec in bot.models:
        if spec.task_type == task_type:
            return ModelChoice(spec.provider, spec.model_id, task_type)
    if task_type == "complex":
        return route(bot, "chat")
    if task_type == "chat":
        for spec in bot.models:
            if spec.task_type == "general":
                return ModelChoice(spec.provider, spec.model_id, "chat")
        if bot.llm_model:
            return ModelChoice(bot.llm_provider, bot.llm_model, "chat")
    return None
