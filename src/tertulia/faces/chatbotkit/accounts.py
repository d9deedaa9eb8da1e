"""ChatBotKit tokens (API keys, optionally limited to routes) and partner users (sub-accounts,
at `/user/…` as the Python SDK calls them and `/partner/user/…` as the Node SDK does)."""

import secrets
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import accounts, limits
from tertulia.core.accounts import Principal
from tertulia.core.errors import Invalid
from tertulia.faces.chatbotkit.bots import Body
from tertulia.faces.chatbotkit.common import (
    Caller,
    Paging,
    given_meta,
    merged_meta,
    ms,
    page_response,
)
from tertulia.faces.deps import SessionDep
from tertulia.faces.inputs import clean
from tertulia.store.tables import Account, ApiKey

tokens = APIRouter(prefix="/token", tags=["chatbotkit"])
users = APIRouter(tags=["chatbotkit"])


def token_public(key: ApiKey) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": key.id,
        "createdAt": ms(key.created_at),
        "updatedAt": ms(key.created_at),
        "name": key.name,
    }
    if key.allowed_routes is not None:
        body["config"] = {"allowedRoutes": key.allowed_routes}
    return body


def allowed_routes(body: dict[str, Any]) -> list[str] | None:
    config = body.get("config")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise Invalid("config must be an object", {"field": "config"})
    routes = config.get("allowedRoutes")
    if routes is None:
        return None
    if not isinstance(routes, list):
        raise Invalid("config.allowedRoutes must be a list of route globs", {"field": "config.allowedRoutes"})
    return routes


async def _create_token(session: AsyncSession, actor: Principal, body: dict[str, Any]) -> dict[str, Any]:
    clean(body, "body")
    name = body.get("name") if isinstance(body.get("name"), str) and body["name"].strip() else "token"
    issued = await accounts.create_api_key(session, actor, name[:128], allowed_routes=allowed_routes(body))
    return {"id": issued.key.id, "token": issued.secret, "createdAt": ms(issued.key.created_at)}


async def _list_tokens(session: AsyncSession, actor: Principal, request: Request, paging: Paging) -> Any:
    actor.require("keys:read")
    query = select(ApiKey).where(
        ApiKey.account_id == actor.account_id, ApiKey.kind == "key", ApiKey.revoked_at.is_(None)
    )
    items = [token_public(key) for key in await paging.page(session, query, ApiKey)]
    return page_response(request, items)


@tokens.get("/list")
async def list_tokens(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    return await _list_tokens(session, principal, request, paging)


@tokens.post("/create")
async def create_token(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    return await _create_token(session, principal, body)


@tokens.post("/{token_id}/delete")
async def delete_token(token_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    await accounts.revoke_api_key(session, principal, token_id)
    return {"id": token_id}


# --- partner users ----------------------------------------------------------------------------


def user_public(account: Account) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": account.id,
        "createdAt": ms(account.created_at),
        "updatedAt": ms(account.updated_at),
        "email": account.email,
        "meta": account.meta or {},
    }
    if account.nickname:
        body["name"] = account.nickname
    if account.description:
        body["description"] = account.description
    if account.limits:
        body["limits"] = _limits_public(account.limits)
    return body


# ChatBotKit's `limits` keeps what its database holds under `database`.
_DATABASE = ("abilities", "datasets", "files", "records", "skillsets")


def _limits_public(given: dict[str, int]) -> dict[str, Any]:
    public: dict[str, Any] = {name: count for name, count in given.items() if name not in _DATABASE}
    database = {name: count for name, count in given.items() if name in _DATABASE}
    if database:
        public["database"] = database
    return public


def _limits_given(value: Any) -> dict[str, Any] | None:
    """`limits` as the core counts them: `database.*` flattened, checked there."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("limits must be an object", {"field": "limits"})
    flat = {name: count for name, count in value.items() if name != "database"}
    database = value.get("database")
    if database is not None:
        if not isinstance(database, dict) or set(database) - set(_DATABASE):
            raise Invalid(f"limits.database holds only {', '.join(_DATABASE)}", {"field": "limits.database"})
        flat.update(database)
    return limits.checked(flat)


def _user_changes(body: dict[str, Any], current: Account | None) -> dict[str, Any]:
    clean(body, "body")
    changes: dict[str, Any] = {}
    for field, column in (("name", "nickname"), ("description", "description"), ("email", "email")):
        if field in body and body[field] is not None:
            if not isinstance(body[field], str) or len(body[field]) > (320 if field == "email" else 4000):
                raise Invalid(f"{field} must be text", {"field": field})
            changes[column] = body[field]
    if "nickname" in changes:
        changes["nickname"] = changes["nickname"][:128]
    meta = merged_meta(current.meta or {}, body) if current else None
    if current is None and isinstance(body.get("meta"), dict):
        meta = given_meta(body)
    if meta is not None:
        changes["meta"] = meta
    if "limits" in body:
        changes["limits"] = _limits_given(body["limits"])
    return changes


def both_paths(path: str) -> list[str]:
    return [f"/user{path}", f"/partner/user{path}"]


def _route(method: str, path: str):  # type: ignore[no-untyped-def]
    """One handler at both of the SDKs' paths."""

    def register(handler):  # type: ignore[no-untyped-def]
        for full in both_paths(path):
            users.add_api_route(
                full, handler, methods=[method], include_in_schema=full.startswith("/partner")
            )
        return handler

    return register


@_route("GET", "/list")
async def list_users(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("accounts:read")
    query = select(Account).where(Account.parent_id == principal.account_id)
    items = [user_public(account) for account in await paging.page(session, query, Account)]
    return page_response(request, items)


@_route("POST", "/create")
async def create_user(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    changes = _user_changes(body, None)
    email = changes.get("email") or f"user-{secrets.token_hex(6)}@partner.tertulia.invalid"
    account = await accounts.create_sub_account(
        session, principal, accounts.NewAccount(email=email, password=None, nickname=changes.get("nickname"))
    )
    rest = {name: value for name, value in changes.items() if name in ("description", "meta", "limits")}
    if rest:
        await accounts.update_sub_account(session, principal, account.id, rest)
    return {"id": account.id}


@_route("GET", "/{user_id}/fetch")
async def fetch_user(user_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return user_public(await accounts.get_sub_account(session, principal, user_id))


@_route("POST", "/{user_id}/update")
async def update_user(
    user_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    account = await accounts.get_sub_account(session, principal, user_id)
    changes = _user_changes(body, account)
    if changes:
        await accounts.update_sub_account(session, principal, account.id, changes)
    return {"id": account.id}


@_route("POST", "/{user_id}/delete")
async def delete_user(user_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    await accounts.delete_sub_account(session, principal, user_id)
    return {"id": user_id}


@_route("GET", "/{user_id}/token/list")
async def list_user_tokens(
    user_id: str, request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    await accounts.get_sub_account(session, principal, user_id)  # another's user: not found
    return await _list_tokens(session, await accounts.act_as(session, principal, user_id), request, paging)


@_route("POST", "/{user_id}/token/create")
async def create_user_token(
    user_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    await accounts.get_sub_account(session, principal, user_id)
    return await _create_token(session, await accounts.act_as(session, principal, user_id), body)


@_route("POST", "/{user_id}/token/{token_id}/delete")
async def delete_user_token(
    user_id: str, token_id: str, principal: Caller, session: SessionDep
) -> dict[str, Any]:
    await accounts.get_sub_account(session, principal, user_id)
    await accounts.revoke_api_key(session, await accounts.act_as(session, principal, user_id), token_id)
    return {"id": token_id}
