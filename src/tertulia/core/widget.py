"""The web channel: a bot's widget settings and keys, and what a widget's visitor does.

A widget key (an API key of kind "widget", bound to one bot) is public: it sits in a web
page. It can only read the bot's public settings and make visitors (core.accounts issues
their signed tokens). A visitor reaches its own conversations with that bot and nothing
else; browsers reach the widget paths only from the bot's allowed origins.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import handoff
from tertulia.core.accounts import IssuedKey, create_api_key, revoke_api_key, widget_routes
from tertulia.core.bots import get_bot
from tertulia.core.conversations import ConversationDraft, create_conversation, get_conversation
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.plugins import enabled_tools
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.store.tables import ApiKey, Bot, Conversation

LANGUAGES = ("en", "es", "pt", "zh")
POSITIONS = ("right", "left")
COLOR_NAMES = ("primary", "background", "text")
MAX_ORIGINS = 50
DEFAULTS: dict[str, Any] = {
    "allowed_origins": [],
    "title": None,
    "avatar_url": None,
    "greeting": "",
    "language": "en",
    "colors": {"primary": "#2563eb", "background": "#ffffff", "text": "#111827"},
    "position": "right",
    # Offer "talk to a person" and the contact form even when the bot's model has not the
    # request-human / lead-capture tool (which offer them too).
    "human_handoff": False,
    "lead_form": False,
}
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
LENGTHS = {"title": 128, "greeting": 1000, "avatar_url": 2048}


def settings_of(bot: Bot) -> dict[str, Any]:
    """The bot's widget settings, with the defaults for what was never set."""
    stored = bot.widget or {}
    colors = {**DEFAULTS["colors"], **stored.get("colors", {})}
    return {**DEFAULTS, **stored, "colors": colors}


def normal_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case, as a browser sends it in `Origin`; None if it is
    not one (a path, a query, another scheme)."""
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port else "")


def origin_allowed(settings: dict[str, Any], origin: str) -> bool:
    allowed = settings["allowed_origins"]
    return "*" in allowed or normal_origin(origin) in allowed


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise Invalid("unknown widget settings", {"unknown": sorted(unknown), "allowed": sorted(DEFAULTS)})
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "allowed_origins":
            if not isinstance(value, list) or len(value) > MAX_ORIGINS:
                raise Invalid(f"allowed_origins is a list of at most {MAX_ORIGINS} origins", {"field": name})
            origins = [normal_origin(item) if isinstance(item, str) else None for item in value]
            bad = [item for item, origin in zip(value, origins, strict=True) if origin is None]
            if bad:
                raise Invalid(
                    "an allowed origin is scheme://host[:port] (for example https://shop.example.com) or *",
                    {"field": name, "invalid": bad[:5]},
                )
            checked[name] = list(dict.fromkeys(origins))
        elif name in LENGTHS:
            if value is not None and (not isinstance(value, str) or len(value) > LENGTHS[name]):
                raise Invalid(f"{name} is text of at most {LENGTHS[name]} characters", {"field": name})
            if name == "avatar_url" and value and urlsplit(value).scheme not in ("http", "https"):
                raise Invalid("avatar_url is an http(s) address", {"field": name})
            checked[name] = value if value or name == "greeting" else None
        elif name == "language":
            if value not in LANGUAGES:
                raise Invalid("unknown widget language", {"field": name, "allowed": list(LANGUAGES)})
            checked[name] = value
        elif name in ("human_handoff", "lead_form"):
            if not isinstance(value, bool):
                raise Invalid(f"{name} is true or false", {"field": name})
            checked[name] = value
        elif name == "position":
            if value not in POSITIONS:
                raise Invalid("unknown widget position", {"field": name, "allowed": list(POSITIONS)})
            checked[name] = value
        else:  # colors
            if not isinstance(value, dict) or set(value) - set(COLOR_NAMES):
                raise Invalid("colors has primary, background and text", {"field": name})
            if not all(isinstance(color, str) and _COLOR.fullmatch(color) for color in value.values()):
                raise Invalid("a colour is #rgb or #rrggbb", {"field": name})
            checked[name] = dict(value)
    return checked


async def get_settings(session: AsyncSession, actor: Principal, bot_id: str) -> dict[str, Any]:
    actor.require("bots:read")
    return settings_of(await get_bot(session, actor, bot_id))


async def update_settings(
    session: AsyncSession, actor: Principal, bot_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    checked = _checked(changes)
    stored = dict(bot.widget or {})
    if "colors" in checked:
        checked["colors"] = {**stored.get("colors", {}), **checked["colors"]}
    bot.widget = {**stored, **checked}
    await session.commit()
    return settings_of(bot)


async def create_key(session: AsyncSession, actor: Principal, bot_id: str, name: str) -> IssuedKey:
    actor.require("bots:write")
    bot = await get_bot(session, actor, bot_id)
    return await create_api_key(
        session,
        actor,
        name,
        scopes=["bots:read"],  # its routes show only the public settings (PublicConfig)
        bot_id=bot.id,
        allowed_routes=list(widget_routes(bot.id)),
        kind="widget",
    )


async def list_keys(session: AsyncSession, actor: Principal, bot_id: str) -> list[ApiKey]:
    actor.require("bots:read")
    bot = await get_bot(session, actor, bot_id)
    query = owned(actor, ApiKey).where(ApiKey.kind == "widget", ApiKey.bot_id == bot.id)
    return list(await session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)))


async def revoke_key(session: AsyncSession, actor: Principal, bot_id: str, key_id: str) -> ApiKey:
    bot = await get_bot(session, actor, bot_id)
    await find_owned(
        session,
        actor,
        ApiKey,
        ApiKey.id == key_id,
        ApiKey.kind == "widget",
        ApiKey.bot_id == bot.id,
        missing="widget key not found",
    )
    return await revoke_api_key(session, actor, key_id)


async def allowed_origins_of(session: AsyncSession, bot_id: str) -> list[str] | None:
    """The origins a bot's widget may be used from, read before anyone is known (a browser's
    preflight carries no credentials); None when there is no such bot. Origins are not a
    secret: any page on them may run the widget."""
    widget = await session.scalar(select(Bot.widget).where(Bot.id == bot_id))
    if widget is None and await session.scalar(select(Bot.id).where(Bot.id == bot_id)) is None:
        return None
    return list((widget or {}).get("allowed_origins", []))


@dataclass(frozen=True)
class PublicConfig:
    """What any page with the widget key may know of the bot: no prompt, no model, no key."""

    bot_id: str
    title: str
    avatar_url: str | None
    greeting: str
    language: str
    colors: dict[str, str]
    position: str
    lead_capture: bool
    request_human: bool


async def public_config(session: AsyncSession, actor: Principal) -> PublicConfig:
    assert actor.bot_id is not None
    bot = await get_bot(session, actor, actor.bot_id)
    settings = settings_of(bot)
    tools = {tool.spec.id for tool, _config in await enabled_tools(session, bot)}
    return PublicConfig(
        bot_id=bot.id,
        title=settings["title"] or bot.name,
        avatar_url=settings["avatar_url"] or bot.avatar_url,
        greeting=settings["greeting"],
        language=settings["language"],
        colors=settings["colors"],
        position=settings["position"],
        lead_capture=settings["lead_form"] or "lead-capture" in tools,
        request_human=settings["human_handoff"] or "request-human" in tools,
    )


async def latest_conversation(session: AsyncSession, visitor: Principal) -> Conversation | None:
    visitor.require("conversations:read")
    query = owned(visitor, Conversation).order_by(Conversation.created_at.desc(), Conversation.id.desc())
    return await session.scalar(query.limit(1))


async def current_conversation(session: AsyncSession, visitor: Principal) -> Conversation:
    conversation = await latest_conversation(session, visitor)
    if conversation is None:
        raise NotFound("this visitor has no conversation yet")
    return conversation


async def start_conversation(session: AsyncSession, visitor: Principal) -> Conversation:
    assert visitor.bot_id is not None and visitor.visitor_id is not None
    return await create_conversation(
        session,
        visitor,
        ConversationDraft(bot_id=visitor.bot_id, platform="web", visitor_id=visitor.visitor_id),
    )


async def leave_contact(session: AsyncSession, visitor: Principal, contact: dict[str, str]) -> Conversation:
    """The lead-capture form: kept on the visitor's conversation (one is started if need be)
    and, as the account's contact, shown to its operators."""
    conversation = await latest_conversation(session, visitor) or await start_conversation(session, visitor)
    checked = handoff.check_contact(contact)
    if not checked.get("email") and not checked.get("phoneNumber"):
        raise Invalid("leave an email address or a phone number", {"field": "email"})
    conversation = await handoff.keep_contact(session, visitor, conversation.id, checked)
    # The visitor cannot reach the account's contacts; the account keeps its own lead.
    await handoff.link_contact(
        session, Principal(visitor.account), conversation, conversation.meta["contact"]
    )
    return await get_conversation(session, visitor, conversation.id)


async def ask_for_person(session: AsyncSession, visitor: Principal) -> Conversation:
    conversation = await latest_conversation(session, visitor) or await start_conversation(session, visitor)
    return await handoff.request_human(session, visitor, conversation.id)
