"""ChatAgent /plugins and /bots/{id}/plugins: the tools there are, and those a bot has."""

from fastapi import APIRouter

from tertulia.core import plugins
from tertulia.core.plugins import Installed
from tertulia.core.tools import ToolSpec
from tertulia.faces.chatagent.bots import masked
from tertulia.faces.chatagent.deps import CurrentPrincipal
from tertulia.faces.chatagent.schemas import (
    BotPluginPublic,
    BotPluginsPublic,
    Done,
    PluginInstall,
    PluginPublic,
    PluginsAvailable,
)
from tertulia.faces.deps import SessionDep

router = APIRouter(tags=["plugins"])


def plugin_public(spec: ToolSpec) -> PluginPublic:
    return PluginPublic(
        id=spec.id,
        name=spec.name,
        description=spec.description,
        version=spec.version,
        author=spec.author,
        category=spec.category,
        config_schema=spec.config_schema,
        parameters=spec.parameters,
    )


def installed_public(bot_id: str, installed: Installed) -> BotPluginPublic:
    return BotPluginPublic(
        bot_id=bot_id,
        plugin_id=installed.spec.id,
        name=installed.spec.name,
        enabled=installed.enabled,
        config=masked(installed.config),
    )


@router.get("/plugins/available")
async def available_plugins(principal: CurrentPrincipal) -> PluginsAvailable:
    principal.require("bots:read")
    return PluginsAvailable(plugins=[plugin_public(spec) for spec in plugins.available()])


@router.get("/bots/{bot_id}/plugins")
async def bot_plugins(bot_id: str, principal: CurrentPrincipal, session: SessionDep) -> BotPluginsPublic:
    found = await plugins.installed(session, principal, bot_id)
    return BotPluginsPublic(plugins=[installed_public(bot_id, item) for item in found], total=len(found))


@router.post("/bots/{bot_id}/plugins/{plugin_id}")
async def install_plugin(
    bot_id: str, plugin_id: str, body: PluginInstall, principal: CurrentPrincipal, session: SessionDep
) -> BotPluginPublic:
    installed = await plugins.install(session, principal, bot_id, plugin_id, body.config, body.enabled)
    return installed_public(bot_id, installed)


@router.delete("/bots/{bot_id}/plugins/{plugin_id}")
async def uninstall_plugin(
    bot_id: str, plugin_id: str, principal: CurrentPrincipal, session: SessionDep
) -> Done:
    await plugins.uninstall(session, principal, bot_id, plugin_id)
    return Done(message="Plugin removed")
