"""Skillsets: named sets of abilities a bot can be given (ChatBotKit's skillsets). An ability
says what it is for (`name`, `description`) and how it is carried out (`instruction`), and
may name a bot or a file it works with.

Kept and linked to bots here; running abilities as tools during a chat belongs to the tool
layer (plugins and tools), which reads them from here.
"""

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.errors import Invalid
from tertulia.core.principal import Principal, find_owned
from tertulia.store.tables import Ability, Bot, File, Skillset, utcnow

SKILLSET_FIELDS = {"name": 256, "description": 4000}
ABILITY_FIELDS = {"name": 256, "description": 4000, "instruction": 32_000}
LINKS = {"linked_bot_id": Bot, "linked_file_id": File}


def _checked(values: dict[str, Any], lengths: dict[str, int]) -> dict[str, Any]:
    unknown = set(values) - {*lengths, "meta", *LINKS}
    if unknown:
        raise Invalid("unknown fields", {"unknown": sorted(unknown)})
    for name, longest in lengths.items():
        value = values.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise Invalid(f"{name} must be text of at most {longest} characters", {"field": name})
    if "meta" in values and not isinstance(values["meta"], dict):
        raise Invalid("meta must be an object", {"field": "meta"})
    return {name: value for name, value in values.items() if value is not None or name in LINKS}


async def create_skillset(session: AsyncSession, actor: Principal, values: dict[str, Any]) -> Skillset:
    actor.require("bots:write")
    actor.require_any_bot()
    await limits.require_room(session, actor, "skillsets")
    skillset = Skillset(account_id=actor.account_id, **_checked(values, SKILLSET_FIELDS))
    session.add(skillset)
    await session.commit()
    return skillset


async def get_skillset(session: AsyncSession, actor: Principal, skillset_id: str) -> Skillset:
    actor.require("bots:read")
    actor.require_any_bot()
    return await find_owned(
        session, actor, Skillset, Skillset.id == skillset_id, missing="skillset not found"
    )


async def update_skillset(
    session: AsyncSession, actor: Principal, skillset_id: str, values: dict[str, Any]
) -> Skillset:
    actor.require("bots:write")
    skillset = await get_skillset(session, actor, skillset_id)
    for name, value in _checked(values, SKILLSET_FIELDS).items():
        setattr(skillset, name, value)
    skillset.updated_at = utcnow()
    await session.commit()
    return skillset


async def delete_skillset(session: AsyncSession, actor: Principal, skillset_id: str) -> None:
    """Removes the skillset with its abilities; bots that had it keep going without."""
    actor.require("bots:write")
    skillset = await get_skillset(session, actor, skillset_id)
    await session.execute(
        update(Bot)
        .where(Bot.account_id == actor.account_id, Bot.skillset_id == skillset.id)
        .values(skillset_id=None)
    )
    await session.delete(skillset)
    await session.commit()


async def _check_links(session: AsyncSession, actor: Principal, values: dict[str, Any]) -> None:
    """A linked bot or file must be the caller's own."""
    for name, model in LINKS.items():
        linked = values.get(name)
        if linked is None:
            continue
        if not isinstance(linked, str):
            raise Invalid(f"{name} must be an id", {"field": name})
        table: Any = model
        await find_owned(
            session, actor, model, table.id == linked, missing=f"{model.__name__.lower()} not found"
        )


async def create_ability(
    session: AsyncSession, actor: Principal, skillset_id: str, values: dict[str, Any]
) -> Ability:
    actor.require("bots:write")
    skillset = await get_skillset(session, actor, skillset_id)
    values = _checked(values, ABILITY_FIELDS)
    await _check_links(session, actor, values)
    await limits.require_room(session, actor, "abilities")
    ability = Ability(account_id=actor.account_id, skillset_id=skillset.id, **values)
    session.add(ability)
    await session.commit()
    return ability


async def get_ability(session: AsyncSession, actor: Principal, skillset_id: str, ability_id: str) -> Ability:
    skillset = await get_skillset(session, actor, skillset_id)
    return await find_owned(
        session,
        actor,
        Ability,
        Ability.id == ability_id,
        Ability.skillset_id == skillset.id,
        missing="ability not found",
    )


async def update_ability(
    session: AsyncSession, actor: Principal, skillset_id: str, ability_id: str, values: dict[str, Any]
) -> Ability:
    actor.require("bots:write")
    ability = await get_ability(session, actor, skillset_id, ability_id)
    values = _checked(values, ABILITY_FIELDS)
    await _check_links(session, actor, values)
    for name, value in values.items():
        setattr(ability, name, value)
    ability.updated_at = utcnow()
    await session.commit()
    return ability


async def delete_ability(session: AsyncSession, actor: Principal, skillset_id: str, ability_id: str) -> None:
    actor.require("bots:write")
    ability = await get_ability(session, actor, skillset_id, ability_id)
    await session.delete(ability)
    await session.commit()
