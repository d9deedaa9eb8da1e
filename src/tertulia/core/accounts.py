"""Accounts, passwords, access tokens (JWT), API keys and sub-accounts."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from anyio import to_thread
from pwdlib import PasswordHash
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.store.tables import Account, ApiKey, Bot, ServerState, utcnow

JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "tk_"
MAX_ROUTES = 50
MAX_SESSION_SECONDS = 86_400
ROLES = ("user",)  # what sign-up may ask for
# An admin sees the whole server's monitoring; made only from the command line.
ADMIN_ROLES = ("user", "admin")
PLANS = ("standard", "premium", "enterprise")
RESOURCES = ("bots", "conversations", "knowledge", "keys", "accounts", "models", "usage")
SCOPES = frozenset(f"{resource}:{action}" for resource in RESOURCES for action in ("read", "write"))

_passwords = PasswordHash.recommended()


@dataclass(frozen=True)
class NewAccount:
    email: str
    password: str | None
    username: str | None = None
    nickname: str | None = None
    role: str = "user"
    plan: str = "standard"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


# --- passwords ------------------------------------------------------------------------


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await to_thread.run_sync(_passwords.hash, password)


async def password_matches(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        # Same cost as a real check, so timing does not reveal which accounts exist.
        await to_thread.run_sync(_passwords.hash, password)
        return False
    return await to_thread.run_sync(_passwords.verify, password, password_hash)


# --- accounts -------------------------------------------------------------------------


def _username_from_email(email: str) -> str:
    local = re.sub(r"[^a-zA-Z0-9_.-]", "", email.split("@", 1)[0]) or "user"
    return f"{local[:48]}-{secrets.token_hex(3)}"


async def register(session: AsyncSession, new: NewAccount, parent: Account | None = None) -> Account:
    email = new.email.strip().lower()
    username = (new.username or _username_from_email(email)).strip()
    if "@" not in email or len(email) > 320:
        raise Invalid("not a valid email address", {"field": "email"})
    # Logins tell an email from a username by its "@", so a username never has one.
    if not 3 <= len(username) <= 64 or "@" in username:
        raise Invalid("a username has 3 to 64 characters and no '@'", {"field": "username"})
    if new.nickname is not None and len(new.nickname) > 128:
        raise Invalid("a nickname has at most 128 characters", {"field": "nickname"})
    if new.role not in ROLES:
        raise Forbidden(f"role {new.role!r} cannot be chosen at sign-up", {"field": "role"})
    if new.plan not in PLANS:
        raise Invalid(f"unknown plan {new.plan!r}", {"field": "plan", "allowed": list(PLANS)})
    taken = await session.scalar(
        select(Account.email).where(or_(Account.email == email, Account.username == username))
    )
    if taken is not None:
        field_name = "email" if taken == email else "username"
        raise Conflict(f"an account with this {field_name} already exists", {"field": field_name})
    account = Account(
        email=email,
        username=username,
        nickname=new.nickname,
        role=new.role,
        plan=new.plan,
        password_hash=await hash_password(new.password) if new.password else None,
        parent_id=parent.id if parent else None,
    )
    session.add(account)
    try:
        await session.commit()
    except IntegrityError as error:  # a concurrent sign-up won the race
        await session.rollback()
        raise Conflict("an account with this email or username already exists") from error
    return account


async def authenticate_password(session: AsyncSession, login: str, password: str) -> Account:
    """`login` is an email address (it has an "@") or a username."""
    needle = login.strip()
    by = Account.email == needle.lower() if "@" in needle else Account.username == needle
    account = await session.scalar(select(Account).where(by))
    matches = await password_matches(password, account.password_hash if account else None)
    if account is None or not matches:
        raise Unauthenticated("incorrect username or password")
    if not account.is_active:
        raise Unauthenticated("this account is disabled")
    return account


async def set_role(session: AsyncSession, login: str, role: str) -> Account:
    """Gives the account named by `login` (its email, or its username) a role: the command
    line's, which no request can reach."""
    if role not in ADMIN_ROLES:
        raise Invalid(f"unknown role {role!r}", {"field": "role", "allowed": list(ADMIN_ROLES)})
    needle = login.strip()
    by = Account.email == needle.lower() if "@" in needle else Account.username == needle
    account = await session.scalar(select(Account).where(by))
    if account is None:
        raise NotFound(f"no account with the email or username {needle!r}")
    account.role = role
    account.updated_at = utcnow()
    await session.commit()
    return account


async def get_account(session: AsyncSession, account_id: str) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound("account not found")
    return account


async def list_sub_accounts(session: AsyncSession, actor: Principal) -> list[Account]:
    actor.require("accounts:read")
    rows = await session.scalars(
        select(Account).where(Account.parent_id == actor.account_id).order_by(Account.created_at)
    )
    return list(rows)


async def create_sub_account(session: AsyncSession, actor: Principal, new: NewAccount) -> Account:
    actor.require("accounts:write")
    actor.require_any_bot()
    if actor.account.parent_id is not None:
        raise Forbidden("a sub-account cannot have sub-accounts of its own")
    return await register(session, new, parent=actor.account)


async def get_sub_account(session: AsyncSession, actor: Principal, account_id: str) -> Account:
    """A parent acting for one of its sub-accounts; anything else is simply not found."""
    actor.require("accounts:read")
    account = await session.scalar(
        select(Account).where(Account.id == account_id, Account.parent_id == actor.account_id)
    )
    if account is None:
        raise NotFound("account not found")
    return account


async def act_as(session: AsyncSession, actor: Principal, account_id: str) -> Principal:
    """A parent acting as one of its sub-accounts (ChatBotKit's X-RunAs-UserId), with the
    same limits as its own credential. Anyone else is not authenticated as that account."""
    if actor.bot_id is not None:
        raise Unauthenticated("a key bound to a bot cannot act as another account")
    child = await session.scalar(
        select(Account).where(Account.id == account_id, Account.parent_id == actor.account_id)
    )
    if child is None or not child.is_active:
        raise Unauthenticated("this credential cannot act as that account")
    return Principal(child, scopes=actor.scopes, key_id=actor.key_id, routes=actor.routes)


async def child_by_email(session: AsyncSession, actor: Principal, email: str) -> str:
    """The id of the caller's sub-account with this email (ChatBotKit's
    X-RunAs-Child-User-Email); anyone else's is not authenticated, as in `act_as`."""
    child = await session.scalar(
        select(Account.id).where(
            Account.email == email.strip().lower(), Account.parent_id == actor.account_id
        )
    )
    if child is None:
        raise Unauthenticated("this credential cannot act as that account")
    return child


async def update_sub_account(
    session: AsyncSession, actor: Principal, account_id: str, changes: dict[str, Any]
) -> Account:
    """Changes a sub-account's nickname, description, email, metadata or limits (core.limits)."""
    actor.require("accounts:write")
    account = await get_sub_account(session, actor, account_id)
    unknown = set(changes) - {"nickname", "description", "email", "meta", "limits"}
    if unknown:
        raise Invalid("unknown account fields", {"unknown": sorted(unknown)})
    if "email" in changes and changes["email"] != account.email:
        email = str(changes["email"]).strip().lower()
        if await session.scalar(select(Account.id).where(Account.email == email)) is not None:
            raise Conflict("an account with this email already exists", {"field": "email"})
        account.email = email
    if "limits" in changes:
        account.limits = limits.checked(changes["limits"]) if changes["limits"] is not None else None
    for name in ("nickname", "description", "meta"):
        if name in changes:
            setattr(account, name, changes[name])
    account.updated_at = utcnow()
    await session.commit()
    return account


async def delete_sub_account(session: AsyncSession, actor: Principal, account_id: str) -> None:
    """Removes a sub-account with everything it holds."""
    actor.require("accounts:write")
    account = await get_sub_account(session, actor, account_id)
    await session.delete(account)
    await session.commit()


# --- access tokens --------------------------------------------------------------------


async def signing_secret(session: AsyncSession, configured: str | None) -> str:
    """The configured secret, or the one generated on first start and kept in the database."""
    if configured:
        return configured
    stored = await session.get(ServerState, "jwt_secret")
    if stored is not None:
        return stored.value
    session.add(ServerState(key="jwt_secret", value=secrets.token_urlsafe(48)))
    try:
        await session.commit()
    except IntegrityError:  # another process generated it first: use theirs
        await session.rollback()
    stored = await session.get(ServerState, "jwt_secret", populate_existing=True)
    assert stored is not None
    return stored.value


def issue_access_token(account: Account, secret: str, ttl_seconds: int) -> IssuedToken:
    now = utcnow()
    claims = {
        "sub": account.id,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "typ": "access",
    }
    return IssuedToken(jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), ttl_seconds)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(API_KEY_PREFIX)


async def authenticate_token(session: AsyncSession, token: str, secret: str) -> Principal:
    """Accepts either an access token (JWT) or an API key; raises Unauthenticated otherwise."""
    if looks_like_jwt(token):
        try:
            claims = jwt.decode(
                token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the access token has expired") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated("the access token is not valid") from error
        if claims.get("typ") == "visitor":
            return await _authenticate_visitor(session, claims)
        if claims.get("typ") != "access":
            raise Unauthenticated("the access token is not valid")
        account = await session.get(Account, str(claims["sub"]))
        if account is None or not account.is_active:
            raise Unauthenticated("the access token is not valid")
        return Principal(account)
    return await _authenticate_api_key(session, token)


# --- web widget visitors ----------------------------------------------------------------

# What a visitor may do: talk in its own conversations with the bot (whose settings the
# engine reads), through the widget's paths only, which show nothing else of the bot.
VISITOR_SCOPES = frozenset({"bots:read", "conversations:read", "conversations:write"})


@dataclass(frozen=True)
class VisitorPass:
    visitor_id: str
    token: str
    expires_at: datetime


def widget_routes(bot_id: str) -> tuple[str, ...]:
    """What a widget key itself may call: the bot's public settings, and making visitors."""
    return (f"widget/{bot_id}/config", f"widget/{bot_id}/visitors")


def issue_visitor_token(widget_key: Principal, secret: str, ttl_seconds: int) -> VisitorPass:
    """A new visitor of a widget key's bot: a signed token naming the visitor, the bot and the
    key, so that revoking the key signs its visitors out."""
    if widget_key.bot_id is None or widget_key.key_id is None or widget_key.visitor_id is not None:
        raise Forbidden("only a widget key makes visitors")
    visitor_id = "vis_" + secrets.token_urlsafe(16)
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": widget_key.account_id,
        "iat": now,
        "exp": expires_at,
        "typ": "visitor",
        "bot": widget_key.bot_id,
        "key": widget_key.key_id,
        "vid": visitor_id,
    }
    return VisitorPass(visitor_id, jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), expires_at)


async def _authenticate_visitor(session: AsyncSession, claims: dict[str, Any]) -> Principal:
    key = await session.get(ApiKey, str(claims.get("key")))
    bot_id, visitor_id = claims.get("bot"), claims.get("vid")
    if (
        key is None
        or key.kind != "widget"
        or key.revoked_at is not None
        or key.bot_id != bot_id
        or key.account_id != claims["sub"]
        or not isinstance(visitor_id, str)
    ):
        raise Unauthenticated("the visitor token is not valid")
    account = await session.get(Account, key.account_id)
    if account is None or not account.is_active:
        raise Unauthenticated("the visitor token is not valid")
    return Principal(
        account,
        scopes=VISITOR_SCOPES,
        bot_id=key.bot_id,
        key_id=key.id,
        routes=(f"widget/{key.bot_id}/**",),
        visitor_id=visitor_id,
    )


# --- API keys -------------------------------------------------------------------------


def _hash_secret(secret: str) -> str:
    # Keys are 256 random bits: a plain SHA-256 is enough and keeps every request cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


async def _authenticate_api_key(session: AsyncSession, secret: str) -> Principal:
    key = await session.scalar(select(ApiKey).where(ApiKey.secret_hash == _hash_secret(secret)))
    now = utcnow()
    if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
        raise Unauthenticated("the API key is not valid")
    account = await session.get(Account, key.account_id)
    if account is None or not account.is_active:
        raise Unauthenticated("the API key is not valid")
    await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    await session.commit()
    scopes = frozenset(key.scopes) if key.scopes is not None else None
    routes = tuple(key.allowed_routes) if key.allowed_routes is not None else None
    return Principal(account, scopes=scopes, bot_id=key.bot_id, key_id=key.id, routes=routes)


async def create_api_key(
    session: AsyncSession,
    actor: Principal,
    name: str,
    scopes: list[str] | None = None,
    bot_id: str | None = None,
    expires_at: datetime | None = None,
    allowed_routes: list[str] | None = None,
    kind: str = "key",
) -> IssuedKey:
    actor.require("keys:write")
    if actor.routes is not None:
        raise Forbidden("a key limited to routes cannot make keys")
    if allowed_routes is not None and (
        len(allowed_routes) > MAX_ROUTES
        or not all(isinstance(route, str) and 0 < len(route) <= 256 for route in allowed_routes)
    ):
        raise Invalid(
            f"allowed routes are at most {MAX_ROUTES} globs of 1 to 256 characters",
            {"field": "allowedRoutes"},
        )
    unknown = sorted(set(scopes or ()) - SCOPES)
    if unknown:
        raise Invalid("unknown scopes", {"field": "scopes", "unknown": unknown, "allowed": sorted(SCOPES)})
    # A key can never grant more than the credential that creates it.
    if actor.scopes is not None:
        wanted = frozenset(scopes) if scopes is not None else SCOPES
        if not wanted <= actor.scopes:
            raise Forbidden("a key cannot have scopes its creator lacks")
        scopes = sorted(wanted)
    if actor.bot_id is not None:
        if bot_id not in (None, actor.bot_id):
            raise Forbidden("this credential is bound to a single bot")
        bot_id = actor.bot_id
    if bot_id is not None:
        await find_owned(session, actor, Bot, Bot.id == bot_id, missing="bot not found")
    if expires_at is not None and expires_at.utcoffset() is None:
        raise Invalid(
            "expires_at needs a time zone (for example 2027-01-01T00:00:00Z)", {"field": "expires_at"}
        )
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at must be in the future", {"field": "expires_at"})
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        account_id=actor.account_id,
        name=name,
        prefix=secret[:10],
        secret_hash=_hash_secret(secret),
        scopes=sorted(set(scopes)) if scopes is not None else None,
        bot_id=bot_id,
        expires_at=expires_at,
        allowed_routes=list(allowed_routes) if allowed_routes is not None else None,
        kind=kind,
    )
    session.add(key)
    await session.commit()
    return IssuedKey(key, secret)


async def create_session(
    session: AsyncSession,
    actor: Principal,
    seconds: int,
    allowed_routes: list[str] | None,
    bot_id: str | None = None,
    scopes: list[str] | None = None,
) -> IssuedKey:
    """A short-lived key for a browser or a sub-account (ChatBotKit's session/create): limited
    to `allowed_routes` (and to `bot_id`'s rows when given), gone after `seconds`. The
    account's sessions that have ended are cleared on the way."""
    if not 0 < seconds <= MAX_SESSION_SECONDS:
        raise Invalid(f"a session lasts 1 to {MAX_SESSION_SECONDS} seconds", {"field": "durationInSeconds"})
    await session.execute(
        delete(ApiKey).where(
            ApiKey.account_id == actor.account_id, ApiKey.kind == "session", ApiKey.expires_at < utcnow()
        )
    )
    return await create_api_key(
        session,
        actor,
        "session",
        scopes=scopes,
        bot_id=bot_id,
        expires_at=utcnow() + timedelta(seconds=seconds),
        allowed_routes=allowed_routes,
        kind="session",
    )


async def list_api_keys(
    session: AsyncSession, actor: Principal, include_revoked: bool = False
) -> list[ApiKey]:
    actor.require("keys:read")
    query = owned(actor, ApiKey).where(ApiKey.kind == "key")
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(await session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)))


async def revoke_api_key(session: AsyncSession, actor: Principal, key_id: str) -> ApiKey:
    actor.require("keys:write")
    key = await find_owned(session, actor, ApiKey, ApiKey.id == key_id, missing="API key not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.commit()
    return key
