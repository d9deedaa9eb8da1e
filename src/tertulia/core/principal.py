"""Who is calling, and the one rule of ownership: a caller reaches only its account's rows,
and only its bot's rows when its credential is bound to a bot."""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.errors import Forbidden, NotFound
from tertulia.store.tables import (
    Account,
    Bot,
    Conversation,
    Document,
    Job,
    KnowledgeBase,
    bot_knowledge_bases,
)

Row = TypeVar("Row")


@dataclass(frozen=True)
class Principal:
    """An account, and what its credential lets it touch.

    `scopes` None means everything the account may do (a password login or an unscoped
    key). `bot_id` set means the credential works for that one bot only.
    """

    account: Account
    scopes: frozenset[str] | None = None
    bot_id: str | None = None
    key_id: str | None = None
    routes: tuple[str, ...] | None = None  # a key limited to these route globs
    # A web widget's visitor (core.widget): only that visitor's conversations with `bot_id`.
    visitor_id: str | None = None

    def allows_route(self, path: str) -> bool:
        """Whether a key limited to routes may call `path`: it must match one of the globs and
        none of the `!` ones (a face's /v1 or /api/v1 prefix does not count)."""
        if self.routes is None:
            return True
        wanted = _relative(path)
        positive = [route for route in self.routes if not route.startswith("!")]
        negative = [route[1:] for route in self.routes if route.startswith("!")]
        return any(_glob(route).fullmatch(wanted) for route in positive) and not any(
            _glob(route).fullmatch(wanted) for route in negative
        )

    @property
    def account_id(self) -> str:
        return self.account.id

    def require(self, scope: str) -> None:
        if self.scopes is not None and scope not in self.scopes:
            raise Forbidden(f"this credential lacks the {scope!r} scope", {"scope": scope})

    def require_not_visitor(self, action: str) -> None:
        """For what a widget's visitor may never do, even within its own bot."""
        if self.visitor_id is not None:
            raise Forbidden(f"a widget visitor cannot {action}")

    def require_any_bot(self) -> None:
        """For actions that are not about one bot (creating one, managing keys)."""
        if self.bot_id is not None:
            raise Forbidden("this credential is bound to a single bot")


def _relative(path: str) -> str:
    for prefix in ("/api/v1/", "/v1/", "/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


@lru_cache(maxsize=1024)
def _glob(route: str) -> re.Pattern[str]:
    """A route glob as a regular expression: `**` any depth, `*` one segment."""
    parts = re.split(r"(\*\*|\*)", _relative(route))
    pattern = "".join(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part) for part in parts)
    return re.compile(pattern)


def owned(actor: Principal, model: type[Row]) -> Select[tuple[Row]]:
    """SELECT of `model` limited to what `actor` may reach. Every core read starts here."""
    table: Any = model
    query = select(model).where(table.account_id == actor.account_id)
    if actor.bot_id is None:
        return query
    if model is Bot:
        return query.where(Bot.id == actor.bot_id)
    if actor.visitor_id is not None:
        if model is not Conversation:
            raise Forbidden("a widget visitor reaches its own conversations only")
        return query.where(Conversation.bot_id == actor.bot_id, Conversation.visitor_id == actor.visitor_id)
    linked = select(bot_knowledge_bases.c.knowledge_base_id).where(
        bot_knowledge_bases.c.bot_id == actor.bot_id
    )
    if model is KnowledgeBase:
        return query.where(KnowledgeBase.id.in_(linked))
    if model in (Document, Job):  # rows of a knowledge base: reachable through the bot's bases
        return query.where(table.knowledge_base_id.in_(linked))
    if hasattr(model, "bot_id"):
        return query.where(table.bot_id == actor.bot_id)
    # A bot-bound key reaches only rows that belong to its bot; a table that cannot say
    # which bot a row belongs to is out of its reach rather than open to it.
    raise Forbidden("this key is limited to one bot")


async def find_owned(
    session: AsyncSession, actor: Principal, model: type[Row], *where: ColumnElement[bool], missing: str
) -> Row:
    """The one row of `model` matching `where` that `actor` may reach, else NotFound.

    Another account's row is reported exactly like a row that does not exist.
    """
    row = await session.scalar(owned(actor, model).where(*where))
    if row is None:
        raise NotFound(missing)
    return row
