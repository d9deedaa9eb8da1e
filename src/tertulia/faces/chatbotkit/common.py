"""What every ChatBotKit route shares (docs/chatbotkit-face.md): the token in `Authorization:
Token …` or `Bearer …`, millisecond timestamps, `meta` with `$update`, cursor pages, and
`application/jsonl` streams of `{"type", "data"}` lines."""

import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core.accounts import Principal, act_as, child_by_email
from tertulia.core.errors import Invalid
from tertulia.faces.deps import RuntimeDep, SessionDep, admit

JSONL = "application/jsonl"
DEFAULT_TAKE = 100
STREAM_LIMIT = 10_000


async def token_principal(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """`Authorization: Token <token>` (the document) or `Bearer <token>` (the SDKs); with
    `X-RunAs-UserId` (or the SDKs' `X-RunAs-User-Id`), or `X-RunAs-Child-User-Email`, a
    partner acts as a sub-account."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer"):
        token = ""
    principal = await admit(request, runtime, session, token.strip() or None)
    run_as = request.headers.get("x-runas-user-id") or request.headers.get("x-runas-userid")
    child_email = request.headers.get("x-runas-child-user-email")
    if not run_as and child_email:
        run_as = await child_by_email(session, principal, child_email)
    if run_as:
        principal = await act_as(session, principal, run_as.strip())
    return principal


Caller = Annotated[Principal, Depends(token_principal)]


def ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def wants_stream(request: Request) -> bool:
    return JSONL in request.headers.get("accept", "")


def merged_meta(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
    """The meta an update leaves: `meta` replaces it, `meta.$update` (or a top-level
    `$update`) merges into it; None when the body does not touch it. Keys that start with a
    non-word character are reserved and dropped."""
    sent = body.get("meta")
    update = body.get("$update")
    if isinstance(sent, dict) and "$update" in sent:
        update, sent = sent["$update"], None
    if sent is None and update is None:
        return None
    if update is not None and not isinstance(update, dict):
        raise Invalid("$update must be an object", {"field": "meta"})
    if sent is not None and not isinstance(sent, dict):
        raise Invalid("meta must be an object", {"field": "meta"})
    result = {**current, **update} if update is not None else dict(sent or {})
    return clean_meta(result)


def given_meta(body: dict[str, Any]) -> dict[str, Any]:
    """The `meta` a create sends (reserved keys dropped), {} when it sends none."""
    return clean_meta(body["meta"]) if isinstance(body.get("meta"), dict) else {}


def clean_meta(meta: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (meta or {}).items() if key and (key[0].isalnum())}


class Paging:
    """`cursor` (the id of the last item of the previous page), `take` and `order`. A page
    holds at most DEFAULT_TAKE items; a JSONL stream goes on through every page (up to
    STREAM_LIMIT), or through `take` items when given."""

    def __init__(
        self,
        request: Request,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        take: Annotated[int | None, Query(ge=0, le=STREAM_LIMIT)] = None,
        order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    ) -> None:
        self.cursor = cursor or None
        if wants_stream(request):
            self.take = min(take or STREAM_LIMIT, STREAM_LIMIT)
        else:
            self.take = min(take or DEFAULT_TAKE, DEFAULT_TAKE)
        self.order = order

    async def page(self, session: AsyncSession, query: Select[Any], table: Any) -> list[Any]:
        """One page of `query` (already limited to what the caller may reach), by
        (created_at, id) in `order`, after the cursor's row."""
        if self.cursor is not None:
            anchor = await session.scalar(
                query.where(table.id == self.cursor).with_only_columns(table.created_at)
            )
            if anchor is None:
                return []
            if self.order == "desc":
                query = query.where(
                    or_(table.created_at < anchor, and_(table.created_at == anchor, table.id < self.cursor))
                )
            else:
                query = query.where(
                    or_(table.created_at > anchor, and_(table.created_at == anchor, table.id > self.cursor))
                )
        ordering = (
            (table.created_at.desc(), table.id.desc())
            if self.order == "desc"
            else (table.created_at.asc(), table.id.asc())
        )
        return list(await session.scalars(query.order_by(*ordering).limit(self.take)))


def page_response(request: Request, items: Sequence[dict[str, Any]]) -> Any:
    """A list action's answer: a page, or `item` lines when the client streams."""
    return jsonl(item_lines(items)) if wants_stream(request) else listing(items)


def listing(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A page: the cursor is always a string ("" when the page is empty)."""
    return {"items": list(items), "cursor": items[-1]["id"] if items else ""}


def line(kind: str, data: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "data": data}, ensure_ascii=False, separators=(",", ":")) + "\n"


def jsonl(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type=JSONL, headers={"Cache-Control": "no-cache"})


async def item_lines(items: Sequence[dict[str, Any]]) -> AsyncIterator[str]:
    for item in items:
        yield line("item", item)
