"""Files that processing made, kept for their owner to download for a while, then removed.

They belong to the account (and to the bot, for a bot-bound key) that sent the upload; any
other caller is told they do not exist. An expired file is gone even before the sweep
that deletes it runs.
"""

from datetime import timedelta

from sqlalchemy import Select, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from tertulia.core.errors import NotFound
from tertulia.core.media.processing import MadeFile
from tertulia.core.paging import Page, count_rows
from tertulia.core.principal import Principal, find_owned, owned
from tertulia.store.tables import MediaFile, utcnow


async def keep_files(
    session: AsyncSession, actor: Principal, made: list[MadeFile], source_name: str, retention_seconds: int
) -> list[MediaFile]:
    """Stores the files (the caller commits)."""
    expires = utcnow() + timedelta(seconds=retention_seconds)
    rows = [
        MediaFile(
            account_id=actor.account_id,
            bot_id=actor.bot_id,
            name=file.name,
            media_type=file.media_type,
            size_bytes=len(file.data),
            source_name=source_name[:512],
            meta=file.metadata,
            content=file.data,
            expires_at=expires,
        )
        for file in made
    ]
    session.add_all(rows)
    await session.flush()
    return rows


MISSING = "file not found (files made by processing are kept for a limited time)"


def _live(actor: Principal) -> Select[tuple[MediaFile]]:
    return owned(actor, MediaFile).where(MediaFile.expires_at > utcnow())


async def list_files(session: AsyncSession, actor: Principal, limit: int, offset: int) -> Page[MediaFile]:
    query = _live(actor)
    total = await count_rows(session, query)
    rows = await session.scalars(
        query.order_by(MediaFile.created_at.desc(), MediaFile.id).limit(limit).offset(offset)
    )
    return Page(list(rows), total, limit, offset)


async def get_file(session: AsyncSession, actor: Principal, file_id: str) -> MediaFile:
    return await find_owned(
        session,
        actor,
        MediaFile,
        MediaFile.id == file_id,
        MediaFile.expires_at > utcnow(),
        missing=MISSING,
    )


async def read_file(session: AsyncSession, actor: Principal, file_id: str) -> tuple[MediaFile, bytes]:
    row = await session.scalar(
        _live(actor).where(MediaFile.id == file_id).options(undefer(MediaFile.content))
    )
    if row is None:
        raise NotFound(MISSING)
    return row, row.content


async def delete_file(session: AsyncSession, actor: Principal, file_id: str) -> None:
    row = await get_file(session, actor, file_id)
    await session.delete(row)
    await session.commit()


async def sweep_expired(session: AsyncSession) -> int:
    """Deletes every account's expired files; returns how many."""
    result = await session.execute(delete(MediaFile).where(MediaFile.expires_at <= utcnow()))
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
