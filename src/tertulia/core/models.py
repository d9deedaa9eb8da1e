"""Which model serves a task, and with whose key.

A task type resolves, first match wins, to: the bot's own toolbox (or, for chat, its llm
settings), the account's default for that task type, then the server's default. The key
used with a remote provider is the bot's own (chat only), else the account's credential
for that provider, else the server's (resolved by the providers layer).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.catalog import (
    KNOWN_MODELS,
    PROVIDERS,
    TASK_KINDS,
    ModelChoice,
    check_choice,
    check_provider,
    route,
)
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.principal import Principal, owned
from tertulia.providers.base import Credentials, Embedder
from tertulia.store.tables import AccountModel, Bot, CatalogModel, KnowledgeBase, ProviderCredential

if TYPE_CHECKING:
    from tertulia.providers.registry import ModelRegistry

MAX_BASE_URL = 2048


@dataclass(frozen=True)
class Resolved:
    """A model choice (None: the server's default) and the credentials to call it with."""

    choice: ModelChoice | None
    credentials: Credentials


async def _credential(session: AsyncSession, account_id: str, provider: str) -> ProviderCredential | None:
    return await session.scalar(
        select(ProviderCredential).where(
            ProviderCredential.account_id == account_id, ProviderCredential.provider == provider
        )
    )


async def _account_model(session: AsyncSession, account_id: str, task_type: str) -> AccountModel | None:
    return await session.scalar(
        select(AccountModel).where(AccountModel.account_id == account_id, AccountModel.task_type == task_type)
    )


async def account_default(session: AsyncSession, account_id: str, task_type: str) -> ModelChoice | None:
    row = await _account_model(session, account_id, task_type)
    return ModelChoice(row.provider, row.model_id, task_type) if row is not None else None


async def credentials_for(session: AsyncSession, account_id: str, provider: str) -> Credentials:
    row = await _credential(session, account_id, provider)
    return Credentials(row.api_key, row.base_url) if row is not None else Credentials()


async def resolve(session: AsyncSession, bot: Bot, task_type: str) -> Resolved:
    """The model for one of `bot`'s tasks (the bot was loaded through the ownership rule)."""
    choice = route(bot, task_type) or await account_default(session, bot.account_id, task_type)
    if choice is None:
        return Resolved(None, Credentials())
    credentials = await credentials_for(session, bot.account_id, choice.provider)
    if task_type == "chat" and bot.llm_api_key and choice.provider == bot.llm_provider:
        credentials = Credentials(bot.llm_api_key, credentials.base_url)
    return Resolved(choice, credentials)


async def resolve_for_account(session: AsyncSession, actor: Principal, choice: ModelChoice) -> Resolved:
    """A raw model named by a client (the OpenAI face), with the account's credentials.

    A key bound to one bot works for that bot only: never for the account's raw models.
    """
    actor.require_any_bot()
    check_choice(choice)
    return Resolved(choice, await credentials_for(session, actor.account_id, choice.provider))


# --- the account's defaults -------------------------------------------------------------


async def list_account_models(session: AsyncSession, actor: Principal) -> list[AccountModel]:
    actor.require("models:read")
    rows = await session.scalars(
        select(AccountModel)
        .where(AccountModel.account_id == actor.account_id)
        .order_by(AccountModel.task_type)
    )
    return list(rows)


async def set_account_model(session: AsyncSession, actor: Principal, choice: ModelChoice) -> AccountModel:
    actor.require("models:write")
    actor.require_any_bot()
    check_choice(choice)
    row = await _account_model(session, actor.account_id, choice.task_type)
    if row is None:
        row = AccountModel(account_id=actor.account_id, task_type=choice.task_type)
        session.add(row)
    row.provider = choice.provider
    row.model_id = choice.model_id
    await session.commit()
    return row


async def remove_account_model(session: AsyncSession, actor: Principal, task_type: str) -> None:
    actor.require("models:write")
    actor.require_any_bot()
    if task_type not in TASK_KINDS:
        raise Invalid(f"unknown task type {task_type!r}", {"field": "task_type", "allowed": list(TASK_KINDS)})
    row = await _account_model(session, actor.account_id, task_type)
    if row is None:
        raise NotFound(f"no account default for task type {task_type!r}")
    await session.delete(row)
    await session.commit()


# --- the account's provider credentials --------------------------------------------------


async def list_credentials(session: AsyncSession, actor: Principal) -> list[ProviderCredential]:
    actor.require("models:read")
    rows = await session.scalars(
        select(ProviderCredential)
        .where(ProviderCredential.account_id == actor.account_id)
        .order_by(ProviderCredential.provider)
    )
    return list(rows)


async def set_credential(
    session: AsyncSession, actor: Principal, provider: str, api_key: str | None, base_url: str | None
) -> ProviderCredential:
    """Stores the account's key (sealed at rest) and base URL for a remote provider."""
    actor.require("models:write")
    actor.require_any_bot()
    if check_provider(provider) == "local":
        raise Invalid("the local provider needs no credentials", {"field": "provider"})
    if base_url is not None and not (
        base_url.startswith(("http://", "https://")) and len(base_url) <= MAX_BASE_URL
    ):
        raise Invalid("base_url must be an http(s) URL", {"field": "base_url"})
    if api_key is not None and not api_key.strip():
        raise Invalid("api_key must not be empty", {"field": "api_key"})
    row = await _credential(session, actor.account_id, provider)
    if row is None:
        row = ProviderCredential(account_id=actor.account_id, provider=provider)
        session.add(row)
    row.api_key = api_key
    row.base_url = base_url.rstrip("/") if base_url else None
    await session.commit()
    return row


async def remove_credential(session: AsyncSession, actor: Principal, provider: str) -> None:
    actor.require("models:write")
    actor.require_any_bot()
    row = await _credential(session, actor.account_id, provider)
    if row is None:
        raise NotFound(f"no credentials stored for provider {provider!r}")
    await session.delete(row)
    await session.commit()


# --- models by name (the OpenAI face's "model" field) -------------------------------------


@dataclass(frozen=True)
class NamedModel:
    """A bot (answering with its own settings) or a raw model."""

    name: str
    bot: Bot | None = None
    choice: ModelChoice | None = None


async def lookup_model(
    session: AsyncSession, actor: Principal, name: str, task_type: str, local: Sequence[ModelChoice]
) -> NamedModel:
    """A bot by id or name, `provider/model`, or an installed local model's bare id.

    A name that matches nothing the caller may use is "not found", whoever owns it.
    """
    name = name.strip()
    if not name:
        raise Invalid("model must not be empty", {"field": "model"})
    bot = await session.scalar(owned(actor, Bot).where(or_(Bot.id == name, Bot.name == name)).limit(1))
    if bot is not None:
        actor.require("bots:read")
        return NamedModel(name, bot=bot)
    provider, slash, model_id = name.partition("/")
    if slash and provider in PROVIDERS and model_id:
        return NamedModel(name, choice=ModelChoice(provider, model_id, task_type))
    for choice in local:
        if choice.model_id == name and choice.task_type == task_type:
            return NamedModel(name, choice=choice)
    raise NotFound(f"the model {name!r} does not exist or you do not have access to it", {"model": name})


async def model_catalog(
    session: AsyncSession, actor: Principal, local: Sequence[ModelChoice]
) -> list[NamedModel]:
    """Every model the caller can name: its bots, installed local models, account defaults."""
    actor.require("bots:read")
    bots = await session.scalars(owned(actor, Bot).order_by(Bot.created_at, Bot.id))
    named = [NamedModel(bot.id, bot=bot) for bot in bots]
    if actor.bot_id is not None:  # a bot-bound key reaches its bot, not the raw models
        return named
    seen: set[str] = set()
    defaults = await session.scalars(select(AccountModel).where(AccountModel.account_id == actor.account_id))
    raw = [*local, *(ModelChoice(row.provider, row.model_id, row.task_type) for row in defaults)]
    for choice in raw:
        name = f"{choice.provider}/{choice.model_id}"
        if name not in seen:
            seen.add(name)
            named.append(NamedModel(name, choice=choice))
    return named


# --- a chat model named by a client (Agent v2's modelName) ------------------------------------

_CHAT_FAMILIES = (
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "google"),
)


def chat_choice(name: str, local: Sequence[ModelChoice]) -> ModelChoice:
    """`provider/model`, an installed local model's id, or a well-known provider's model name
    (gpt-4o, claude-…, gemini-…), as the chat model it names."""
    return _named(name, "chat", local, _CHAT_FAMILIES, "modelName")


def _named(
    name: str, task_type: str, local: Sequence[ModelChoice], families: Sequence[tuple[str, str]], field: str
) -> ModelChoice:
    name = name.strip()
    provider, slash, model_id = name.partition("/")
    if slash and provider in PROVIDERS and model_id:
        return ModelChoice(provider, model_id, task_type)
    for choice in local:
        if choice.task_type == task_type and choice.model_id == name:
            return choice
    for prefix, family in families:
        if name.startswith(prefix):
            return ModelChoice(family, name, task_type)
    label = "embedding model" if task_type == "embedding" else "model"
    raise Invalid(
        f"unknown {label} {name!r}; name it as provider/model", {"field": field, "providers": list(PROVIDERS)}
    )


# --- embedding models named by a knowledge base -------------------------------------------

_EMBEDDING_FAMILIES = (
    ("text-embedding-3", "openai"),
    ("text-embedding-ada", "openai"),
    ("text-embedding-00", "google"),
    ("gemini-embedding", "google"),
    ("embedding-001", "google"),
)


def embedding_choice(name: str | None, local: Sequence[ModelChoice]) -> ModelChoice | None:
    """A knowledge base's `embedding_model` as a choice; None means the server's default.

    Accepts `provider/model`, an installed local model's id, or a well-known provider
    model name (OpenAI's `text-embedding-ada-002`, Google's `text-embedding-004` …).
    """
    if name is None or not name.strip():
        return None
    return _named(name, "embedding", local, _EMBEDDING_FAMILIES, "embedding_model")


async def check_embedding_model(
    session: AsyncSession, actor: Principal, name: str | None, registry: "ModelRegistry"
) -> None:
    """Refuses, early and clearly, an embedding model this account cannot reach."""
    choice = embedding_choice(name, registry.local_models())
    if choice is None or choice.provider == "local" or registry.server_configured(choice.provider):
        if choice is not None and choice.provider == "local" and choice not in registry.local_models():
            raise Invalid(
                f"the local embedding model {choice.model_id!r} is not installed",
                {"field": "embedding_model"},
            )
        return
    stored = await credentials_for(session, actor.account_id, choice.provider)
    if stored.api_key or (choice.provider == "openai-compatible" and stored.base_url):
        return
    raise Invalid(
        f"the embedding model {name!r} needs the {choice.provider!r} provider, which is not configured: "
        f"set TERTULIA_{choice.provider.upper().replace('-', '_')}_API_KEY on the server, or store this "
        "account's key for it (PUT /api/v1/providers/" + choice.provider + ")",
        {"field": "embedding_model", "provider": choice.provider},
    )


async def embedder_for_base(
    session: AsyncSession, registry: "ModelRegistry", base: KnowledgeBase
) -> Embedder:
    """The embedder a knowledge base indexes and is searched with."""
    choice = embedding_choice(base.embedding_model, registry.local_models())
    if choice is None:
        return registry.embedder(None)
    return registry.embedder(choice, await credentials_for(session, base.account_id, choice.provider))


# --- numbered models: every model the server can use, each with a stable integer ------------


async def _configured_providers(
    session: AsyncSession, actor: Principal, registry: "ModelRegistry"
) -> list[str]:
    stored = set(
        await session.scalars(
            select(ProviderCredential.provider).where(ProviderCredential.account_id == actor.account_id)
        )
    )
    return [
        provider for provider in KNOWN_MODELS if provider in stored or registry.server_configured(provider)
    ]


async def numbered_models(
    session: AsyncSession, actor: Principal, registry: "ModelRegistry"
) -> list[CatalogModel]:
    """The models this account can use — local ones installed here, and the well-known ones
    of each provider configured on the server or for the account — each with its number.

    A number is given the first time a model is listed and never changes or moves to
    another model (CriaBot names models by these numbers).
    """
    actor.require("models:read")
    wanted = [
        *registry.local_models(),
        *(
            ModelChoice(provider, model_id, task_type)
            for provider in await _configured_providers(session, actor, registry)
            for model_id, task_type in KNOWN_MODELS[provider]
        ),
    ]
    keys = {(choice.provider, choice.model_id, choice.task_type) for choice in wanted}
    rows = list(await session.scalars(select(CatalogModel).order_by(CatalogModel.id)))
    known = {(row.provider, row.model_id, row.task_type) for row in rows}
    missing = [
        choice for choice in wanted if (choice.provider, choice.model_id, choice.task_type) not in known
    ]
    if missing:
        for choice in missing:
            session.add(
                CatalogModel(provider=choice.provider, model_id=choice.model_id, task_type=choice.task_type)
            )
        try:
            await session.commit()
        except IntegrityError:  # another request numbered them first: theirs stand
            await session.rollback()
        rows = list(await session.scalars(select(CatalogModel).order_by(CatalogModel.id)))
    return [row for row in rows if (row.provider, row.model_id, row.task_type) in keys]


async def numbered_model(
    session: AsyncSession,
    actor: Principal,
    registry: "ModelRegistry",
    number: int,
    task_type: str,
    field: str,
) -> ModelChoice:
    """The model numbered `number`, which must serve `task_type`'s kind and be usable here."""
    for row in await numbered_models(session, actor, registry):
        if row.id == number:
            if TASK_KINDS.get(row.task_type) != TASK_KINDS[task_type]:
                raise Invalid(
                    f"model {number} is a {row.task_type} model, not a {task_type} model",
                    {"field": field, "model_id": number},
                )
            return ModelChoice(row.provider, row.model_id, task_type)
    raise NotFound(
        f"there is no model numbered {number} on this server", {"field": field, "model_id": number}
    )
