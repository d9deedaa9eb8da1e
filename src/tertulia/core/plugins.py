"""Tools installed on bots (ChatAgent's plugins): which exist, which a bot has on, and the
settings each was given. A bot's `plugins` list says what is on (every face reads it); the
settings live in `bot_plugins`, sealed, and stay when a tool is switched off."""

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.bots import get_bot
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.principal import Principal
from tertulia.core.tools import TOOLS, Tool, ToolSpec
from tertulia.store.tables import Bot, BotPlugin, utcnow

_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}
MAX_CONFIG_CHARS = 8000


@dataclass(frozen=True)
class Installed:
    spec: ToolSpec
    enabled: bool
    config: dict[str, Any]  # faces mask keys and passwords before showing it


def available() -> list[ToolSpec]:
    return [tool.spec for tool in TOOLS.values()]


def tool_named(plugin_id: str) -> Tool:
    tool = TOOLS.get(plugin_id)
    if tool is None:
        raise NotFound(f"no plugin {plugin_id!r}", {"plugin_id": plugin_id, "available": sorted(TOOLS)})
    return tool


def check_config(spec: ToolSpec, config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise Invalid("config must be an object", {"field": "config"})
    unknown = sorted(set(config) - set(spec.config_schema))
    if unknown:
        raise Invalid(
            f"the {spec.id} plugin has no settings {unknown}",
            {"field": "config", "unknown": unknown, "allowed": sorted(spec.config_schema)},
        )
    for name, rule in spec.config_schema.items():
        value = config.get(name)
        if value is None:
            if rule.get("required"):
                raise Invalid(f"the {spec.id} plugin needs config.{name}", {"field": f"config.{name}"})
            continue
        wanted = _TYPES.get(rule.get("type", "string"), str)
        if not isinstance(value, wanted) or (isinstance(value, bool) and rule.get("type") != "boolean"):
            raise Invalid(
                f"config.{name} must be a {rule.get('type', 'string')}", {"field": f"config.{name}"}
            )
    kept = {name: value for name, value in config.items() if value is not None}
    if len(json.dumps(kept)) > MAX_CONFIG_CHARS:
        raise Invalid(f"config is longer than {MAX_CONFIG_CHARS} characters", {"field": "config"})
    return kept


async def _row(session: AsyncSession, bot: Bot, plugin_id: str) -> BotPlugin | None:
    found = await session.scalars(
        select(BotPlugin).where(BotPlugin.bot_id == bot.id, BotPlugin.plugin_id == plugin_id)
    )
    return found.first()


async def install(
    session: AsyncSession,
    actor: Principal,
    bot_id: str,
    plugin_id: str,
    config: Any,
    enabled: bool,
) -> Installed:
    """Installs the plugin on the bot, or changes its settings; `enabled` switches it on or off."""
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    spec = tool_named(plugin_id).spec
    settings = check_config(spec, config)
    row = await _row(session, bot, plugin_id)
    if row is None:
        row = BotPlugin(account_id=bot.account_id, bot_id=bot.id, plugin_id=plugin_id, config="{}")
        session.add(row)
    row.config = json.dumps(settings)
    on = [plugin for plugin in bot.plugins or [] if plugin != plugin_id]
    bot.plugins = [*on, plugin_id] if enabled else on
    bot.updated_at = utcnow()
    await session.commit()
    return Installed(spec, enabled, settings)


async def installed(session: AsyncSession, actor: Principal, bot_id: str) -> list[Installed]:
    """The bot's plugins: those on, then those switched off that keep their settings."""
    bot = await get_bot(session, actor, bot_id)
    rows = {
        row.plugin_id: row
        for row in await session.scalars(select(BotPlugin).where(BotPlugin.bot_id == bot.id))
    }
    on = [plugin for plugin in bot.plugins or [] if plugin in TOOLS]
    off = sorted(plugin for plugin in rows if plugin not in on and plugin in TOOLS)
    return [
        Installed(TOOLS[plugin].spec, plugin in on, json.loads(rows[plugin].config) if plugin in rows else {})
        for plugin in [*on, *off]
    ]


async def uninstall(session: AsyncSession, actor: Principal, bot_id: str, plugin_id: str) -> None:
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    row = await _row(session, bot, plugin_id)
    if row is None and plugin_id not in (bot.plugins or []):
        raise NotFound(f"the plugin {plugin_id!r} is not installed on this bot", {"plugin_id": plugin_id})
    if row is not None:
        await session.delete(row)
    bot.plugins = [plugin for plugin in bot.plugins or [] if plugin != plugin_id]
    bot.updated_at = utcnow()
    await session.commit()


async def enabled_tools(session: AsyncSession, bot: Bot) -> list[tuple[Tool, dict[str, Any]]]:
    """The tools the bot has on, each with its settings (already authorised through `bot`)."""
    on = [plugin for plugin in bot.plugins or [] if plugin in TOOLS]
    if not on:
        return []
    rows = await session.scalars(
        select(BotPlugin).where(BotPlugin.bot_id == bot.id, BotPlugin.plugin_id.in_(on))
    )
    configs = {row.plugin_id: json.loads(row.config) for row in rows}
    return [(TOOLS[plugin], configs.get(plugin, {})) for plugin in on]
