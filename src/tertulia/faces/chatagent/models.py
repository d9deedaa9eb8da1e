"""Tertulia's additions to the ChatAgent face: the account's model providers (keys are
write-only), its default model per task type, the models it can use, and token usage.

ChatAgent's document has no such endpoints; these follow its conventions (paths under
/api/v1, snake_case, the same error envelope).
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from tertulia.core import models, usage
from tertulia.core.catalog import PROVIDERS, ModelChoice
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.schemas import Done, Identifier, RequestModel, Url
from tertulia.faces.deps import RuntimeDep, SessionDep

router = APIRouter(tags=["models"])


class ProviderPublic(BaseModel):
    provider: str
    configured_by_server: bool
    api_key_set: bool
    base_url: str | None


class ProvidersPublic(BaseModel):
    providers: list[ProviderPublic]


class ProviderUpdate(RequestModel):
    api_key: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    base_url: Url | None = None


class ModelPublic(BaseModel):
    provider: str
    model: str
    task_type: str


class ModelsPublic(BaseModel):
    defaults: list[ModelPublic] = Field(description="The account's default model per task type")
    local: list[ModelPublic] = Field(description="Packaged models installed on this server")


class NumberedModelPublic(ModelPublic):
    id: int = Field(description="The model's number, stable on this server (CriaBot's model ids)")


class CatalogPublic(BaseModel):
    models: list[NumberedModelPublic]


class DefaultModelUpdate(RequestModel):
    provider: Identifier
    model: Annotated[str, Field(min_length=1, max_length=256)]


class Spent(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int


class BotSpent(Spent):
    bot_id: str | None


class QuotaPublic(BaseModel):
    limit: int | None
    used: int
    remaining: int | None
    window_hours: int = 24


class UsagePublic(BaseModel):
    since: datetime
    until: datetime
    total: Spent
    by_bot: list[BotSpent]
    quota: QuotaPublic


def _spent(spent: usage.Spent) -> dict[str, int]:
    return {
        "prompt_tokens": spent.prompt_tokens,
        "completion_tokens": spent.completion_tokens,
        "total_tokens": spent.total_tokens,
        "calls": spent.calls,
    }


@router.get("/providers")
async def list_providers(
    principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> ProvidersPublic:
    stored = {row.provider: row for row in await models.list_credentials(session, principal)}
    return ProvidersPublic(
        providers=[
            ProviderPublic(
                provider=provider,
                configured_by_server=runtime.models.server_configured(provider),
                api_key_set=provider in stored and bool(stored[provider].api_key),
                base_url=stored[provider].base_url if provider in stored else None,
            )
            for provider in PROVIDERS
        ]
    )


@router.put("/providers/{provider}")
async def set_provider(
    provider: str, body: ProviderUpdate, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> ProviderPublic:
    row = await models.set_credential(session, principal, provider, body.api_key, body.base_url)
    return ProviderPublic(
        provider=row.provider,
        configured_by_server=runtime.models.server_configured(row.provider),
        api_key_set=bool(row.api_key),
        base_url=row.base_url,
    )


@router.delete("/providers/{provider}")
async def remove_provider(provider: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await models.remove_credential(session, principal, provider)
    return Done(message="Provider credentials removed")


@router.get("/models")
async def list_models(principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep) -> ModelsPublic:
    defaults = await models.list_account_models(session, principal)
    return ModelsPublic(
        defaults=[
            ModelPublic(provider=row.provider, model=row.model_id, task_type=row.task_type)
            for row in defaults
        ],
        local=[
            ModelPublic(provider=choice.provider, model=choice.model_id, task_type=choice.task_type)
            for choice in runtime.models.local_models()
        ],
    )


@router.get("/models/catalog")
async def model_catalog(
    principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> CatalogPublic:
    """Every model this account can use, local or from a configured provider, numbered."""
    rows = await models.numbered_models(session, principal, runtime.models)
    return CatalogPublic(
        models=[
            NumberedModelPublic(id=row.id, provider=row.provider, model=row.model_id, task_type=row.task_type)
            for row in rows
        ]
    )


@router.put("/models/defaults/{task_type}")
async def set_default_model(
    task_type: str, body: DefaultModelUpdate, principal: CurrentPrincipal, session: SessionDep
) -> ModelPublic:
    row = await models.set_account_model(
        session, principal, ModelChoice(body.provider, body.model, task_type)
    )
    return ModelPublic(provider=row.provider, model=row.model_id, task_type=row.task_type)


@router.delete("/models/defaults/{task_type}")
async def remove_default_model(task_type: str, principal: CurrentPrincipal, session: SessionDep) -> Done:
    await models.remove_account_model(session, principal, task_type)
    return Done(message="Default model removed")


@router.get("/usage")
async def get_usage(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    bot_id: Annotated[str | None, Query(max_length=64)] = None,
) -> UsagePublic:
    report = await usage.usage_report(session, principal, since, until, bot_id)
    state = await usage.quota(
        session, principal.account_id, runtime.settings.token_quota(principal.account.plan)
    )
    return UsagePublic(
        since=report.since,
        until=report.until,
        total=Spent(**_spent(report.total)),
        by_bot=[BotSpent(bot_id=bot, **_spent(spent)) for bot, spent in report.by_bot.items()],
        quota=QuotaPublic(limit=state.limit, used=state.used, remaining=state.remaining),
    )
