"""ChatBotKit skillsets and their abilities (docs/chatbotkit-face.md §7.4). A bot is given a
skillset with `skillsetId` (bots.py)."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from tertulia.core import skillsets
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.bots import Body
from tertulia.faces.chatbotkit.common import Caller, Paging, given_meta, merged_meta, ms, page_response
from tertulia.faces.deps import SessionDep
from tertulia.faces.inputs import clean
from tertulia.store.tables import Ability, Skillset

router = APIRouter(prefix="/skillset", tags=["chatbotkit"])

# ChatBotKit's names for an ability's links (0.6.0's, and the older ones) → the core's.
ABILITY_LINKS = {"linkedBotId": "linked_bot_id", "linkedFileId": "linked_file_id"}
OLDER_NAMES = {"linkedBotId": "botId", "linkedFileId": "fileId"}


def skillset_public(skillset: Skillset) -> dict[str, Any]:
    return {
        "id": skillset.id,
        "createdAt": ms(skillset.created_at),
        "updatedAt": ms(skillset.updated_at),
        "name": skillset.name,
        "description": skillset.description,
        "meta": skillset.meta or {},
    }


def ability_public(ability: Ability) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ability.id,
        "createdAt": ms(ability.created_at),
        "updatedAt": ms(ability.updated_at),
        "name": ability.name,
        "description": ability.description,
        "instruction": ability.instruction,
        "meta": ability.meta or {},
    }
    for field, column in ABILITY_LINKS.items():
        if getattr(ability, column):
            body[field] = getattr(ability, column)
    return body


def _values(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    clean(body, "body")
    values = {name: body[name] for name in fields if body.get(name) is not None}
    for field, column in ABILITY_LINKS.items() if "instruction" in fields else ():
        for name in (field, OLDER_NAMES[field]):
            if name in body:
                values[column] = body[name]
    return values


def _meta(values: dict[str, Any], current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    meta = given_meta(body) if current is None else merged_meta(current, body)
    return {**values, "meta": meta} if meta is not None else values


@router.get("/list")
async def list_skillsets(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("bots:read")
    principal.require_any_bot()
    items = [skillset_public(row) for row in await paging.page(session, owned(principal, Skillset), Skillset)]
    return page_response(request, items)


@router.post("/create")
async def create_skillset(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    values = _meta(_values(body, tuple(skillsets.SKILLSET_FIELDS)), None, body)
    return {"id": (await skillsets.create_skillset(session, principal, values)).id}


@router.get("/{skillset_id}/fetch")
async def fetch_skillset(skillset_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return skillset_public(await skillsets.get_skillset(session, principal, skillset_id))


@router.post("/{skillset_id}/update")
async def update_skillset(
    skillset_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    skillset = await skillsets.get_skillset(session, principal, skillset_id)
    values = _meta(_values(body, tuple(skillsets.SKILLSET_FIELDS)), skillset.meta or {}, body)
    await skillsets.update_skillset(session, principal, skillset.id, values)
    return {"id": skillset.id}


@router.post("/{skillset_id}/delete")
async def delete_skillset(skillset_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    await skillsets.delete_skillset(session, principal, skillset_id)
    return {"id": skillset_id}


# --- abilities --------------------------------------------------------------------------------


async def _abilities(
    request: Request, principal: Caller, session: SessionDep, skillset_id: str, paging: Paging
) -> Any:
    skillset = await skillsets.get_skillset(session, principal, skillset_id)
    query = select(Ability).where(
        Ability.account_id == principal.account_id, Ability.skillset_id == skillset.id
    )
    items = [ability_public(row) for row in await paging.page(session, query, Ability)]
    return page_response(request, items)


@router.get("/{skillset_id}/ability/list")
async def list_abilities(
    skillset_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    return await _abilities(request, principal, session, skillset_id, paging)


@router.get("/{skillset_id}/ability/export")
async def export_abilities(
    skillset_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    return await _abilities(request, principal, session, skillset_id, paging)


@router.post("/{skillset_id}/ability/create")
async def create_ability(
    skillset_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    values = _meta(_values(body, tuple(skillsets.ABILITY_FIELDS)), None, body)
    return {"id": (await skillsets.create_ability(session, principal, skillset_id, values)).id}


@router.get("/{skillset_id}/ability/{ability_id}/fetch")
async def fetch_ability(
    skillset_id: str, ability_id: str, principal: Caller, session: SessionDep
) -> dict[str, Any]:
    return ability_public(await skillsets.get_ability(session, principal, skillset_id, ability_id))


@router.post("/{skillset_id}/ability/{ability_id}/update")
async def update_ability(
    skillset_id: str, ability_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    ability = await skillsets.get_ability(session, principal, skillset_id, ability_id)
    values = _meta(_values(body, tuple(skillsets.ABILITY_FIELDS)), ability.meta or {}, body)
    await skillsets.update_ability(session, principal, skillset_id, ability.id, values)
    return {"id": ability.id}


@router.post("/{skillset_id}/ability/{ability_id}/delete")
async def delete_ability(
    skillset_id: str, ability_id: str, principal: Caller, session: SessionDep
) -> dict[str, Any]:
    await skillsets.delete_ability(session, principal, skillset_id, ability_id)
    return {"id": ability_id}
