"""One page of a list, with the total the list would have without paging."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    items: list[Row]
    total: int
    limit: int
    offset: int


async def count_rows(session: AsyncSession, query: Select) -> int:  # type: ignore[type-arg]
    return await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
