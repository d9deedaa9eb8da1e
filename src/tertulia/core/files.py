"""Files an account keeps (ChatBotKit files), and attaching them to knowledge bases.

A file is made first (its name and details), its bytes come after: straight in a request,
or through a signed upload URL that works once, for the size and type it was issued for,
for a quarter of an hour, with no other credential (the SDKs send the bytes that way).
Downloads can be handed out the same way, as a signed URL that ends with the content it
was made for.

Attaching a file to a knowledge base indexes its content there as one document of the
file's name, parsed like any upload (text, PDF, Office …); syncing indexes it again, and
detaching (or deleting the file) removes that document.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import limits
from tertulia.core.errors import Conflict, Invalid, NotFound, PayloadTooLarge, Unauthenticated
from tertulia.core.knowledge import bases, documents
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.principal import Principal, find_owned
from tertulia.jobs.runner import JobRunner
from tertulia.store.tables import DatasetFile, Document, File, utcnow

UPLOAD_SECONDS = 15 * 60
DOWNLOAD_SECONDS = 15 * 60
MAX_NAME = 255
MAX_MEDIA_TYPE = 128
DEFAULT_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class FileDetails:
    name: str | None = None
    description: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    """How large an upload may be, packed and unpacked (the server's settings)."""

    max_bytes: int
    max_unpacked_bytes: int


def _checked_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip().replace("/", "_").replace("\\", "_")
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"a file name has 1 to {MAX_NAME} characters", {"field": "name"})
    return name


def _checked_type(media_type: str | None) -> str:
    media_type = (media_type or "").split(";")[0].strip().lower() or DEFAULT_MEDIA_TYPE
    if len(media_type) > MAX_MEDIA_TYPE or "/" not in media_type:
        raise Invalid("type must be a media type such as text/plain", {"field": "type"})
    return media_type


async def create_file(session: AsyncSession, actor: Principal, details: FileDetails) -> File:
    actor.require("knowledge:write")
    actor.require_any_bot()
    await limits.require_room(session, actor, "files")
    file = File(
        account_id=actor.account_id,
        name=_checked_name(details.name),
        description=details.description,
        meta=details.meta,
    )
    session.add(file)
    await session.commit()
    return file


async def get_file(session: AsyncSession, actor: Principal, file_id: str) -> File:
    actor.require("knowledge:read")
    actor.require_any_bot()
    return await find_owned(session, actor, File, File.id == file_id, missing="file not found")


async def update_file(session: AsyncSession, actor: Principal, file_id: str, changes: dict[str, Any]) -> File:
    actor.require("knowledge:write")
    file = await get_file(session, actor, file_id)
    if "name" in changes:
        changes["name"] = _checked_name(changes["name"])
    for name, value in changes.items():
        setattr(file, name, value)
    file.updated_at = utcnow()
    await session.commit()
    return file


async def delete_file(session: AsyncSession, actor: Principal, file_id: str, vectors: VectorIndex) -> None:
    """Removes the file, and what it put in knowledge bases."""
    actor.require("knowledge:write")
    file = await get_file(session, actor, file_id)
    for link in await _links(session, file.id):
        await _drop_document(session, actor, link, vectors)
    await session.delete(file)
    await session.commit()


async def read_content(session: AsyncSession, actor: Principal, file_id: str) -> tuple[File, bytes | None]:
    """The file and its bytes (None while nothing was uploaded)."""
    file = await get_file(session, actor, file_id)
    return file, await _content(session, file)


async def _content(session: AsyncSession, file: File) -> bytes | None:
    return await session.scalar(select(File.content).where(File.id == file.id))


def _store(file: File, data: bytes, media_type: str | None, limits: Limits, name: str | None) -> None:
    if not data:
        raise Invalid("the file is empty", {"field": "file"})
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"a file has at most {limits.max_bytes} bytes", {"max_bytes": limits.max_bytes})
    file.content = data
    file.size_bytes = len(data)
    file.content_hash = hashlib.sha256(data).hexdigest()
    file.media_type = _checked_type(media_type)
    if name and not file.name:
        file.name = _checked_name(name)
    file.upload_digest = file.upload_size = file.upload_type = file.upload_expires_at = None
    file.updated_at = utcnow()


async def store_content(
    session: AsyncSession,
    actor: Principal,
    file_id: str,
    data: bytes,
    media_type: str | None,
    limits: Limits,
    name: str | None = None,
) -> File:
    """The file's bytes, as sent (they replace any before)."""
    actor.require("knowledge:write")
    file = await get_file(session, actor, file_id)
    _store(file, data, media_type, limits, name)
    await session.commit()
    return file


async def issue_upload(
    session: AsyncSession,
    actor: Principal,
    file_id: str,
    size: int,
    media_type: str | None,
    name: str | None,
    limits: Limits,
) -> tuple[File, str]:
    """A one-time upload secret for `size` bytes of `media_type`; any earlier one stops working."""
    actor.require("knowledge:write")
    file = await get_file(session, actor, file_id)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise Invalid("file.size must be a positive number of bytes", {"field": "file.size"})
    if size > limits.max_bytes:
        raise PayloadTooLarge(f"a file has at most {limits.max_bytes} bytes", {"max_bytes": limits.max_bytes})
    secret = secrets.token_urlsafe(32)
    file.upload_digest = hashlib.sha256(secret.encode()).hexdigest()
    file.upload_size = size
    file.upload_type = _checked_type(media_type)
    file.upload_expires_at = utcnow() + timedelta(seconds=UPLOAD_SECONDS)
    if name and not file.name:
        file.name = _checked_name(name)
    await session.commit()
    return file, secret


async def redeem_upload(
    session: AsyncSession, file_id: str, secret: str, data: bytes, limits: Limits
) -> File:
    """Stores the bytes sent to a signed upload URL. The secret is the credential: it names
    one file, works once, and only before it expires and for the size it was issued for."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    file = await session.scalar(select(File).where(File.id == file_id).with_for_update())
    if (
        file is None
        or file.upload_digest is None
        or not hmac.compare_digest(file.upload_digest, digest)
        or file.upload_expires_at is None
        or file.upload_expires_at <= utcnow()
    ):
        raise Unauthenticated("this upload link is not valid (it works once, for 15 minutes)")
    if len(data) != file.upload_size:
        raise Invalid(f"the upload must be the {file.upload_size} bytes announced", {"field": "file.size"})
    _store(file, data, file.upload_type, limits, None)
    await session.commit()
    return file


def download_signature(signing_key: str, file: File, expires: int) -> str:
    message = f"download:{file.id}:{file.content_hash}:{expires}".encode()
    return hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()


def signed_download(signing_key: str, file: File) -> tuple[int, str]:
    """When a download link ends, and its signature."""
    expires = int(time.time()) + DOWNLOAD_SECONDS
    return expires, download_signature(signing_key, file, expires)


async def redeem_download(
    session: AsyncSession, signing_key: str, file_id: str, expires: int, signature: str
) -> tuple[File, bytes]:
    file = await session.get(File, file_id)
    if (
        file is None
        or file.content_hash is None
        or expires < time.time()
        or not hmac.compare_digest(download_signature(signing_key, file, expires), signature)
    ):
        raise Unauthenticated("this download link is not valid (it lasts 15 minutes)")
    data = await _content(session, file)
    assert data is not None
    return file, data


# --- knowledge bases --------------------------------------------------------------------------


async def _links(session: AsyncSession, file_id: str) -> list[DatasetFile]:
    return list(await session.scalars(select(DatasetFile).where(DatasetFile.file_id == file_id)))


async def _drop_document(
    session: AsyncSession, actor: Principal, link: DatasetFile, vectors: VectorIndex
) -> None:
    if link.document_id is not None:
        try:
            await documents.delete_document(session, actor, link.knowledge_base_id, link.document_id, vectors)
        except NotFound:  # removed through another face already
            pass


async def attached(session: AsyncSession, actor: Principal, base_id: str) -> Any:
    """A query of the files attached to the base (for a face's paging)."""
    base = await bases.get_knowledge_base(session, actor, base_id)
    linked = select(DatasetFile.file_id).where(DatasetFile.knowledge_base_id == base.id)
    return select(File).where(File.account_id == actor.account_id, File.id.in_(linked))


async def attach(
    session: AsyncSession,
    actor: Principal,
    base_id: str,
    file_id: str,
    jobs: JobRunner,
    limits: Limits,
    wait_seconds: float,
    kind: str = "source",
) -> DatasetFile:
    """Indexes the file in the base as a document of its name (waiting up to `wait_seconds`
    for it to be searchable); attaching it again indexes it again."""
    base = await bases.get_knowledge_base(session, actor, base_id)
    file, data = await read_content(session, actor, file_id)
    if data is None:
        raise Invalid("the file has no content yet: upload it first", {"field": "fileId"})
    name = file.name or f"file {file.id}"
    link = await session.scalar(
        select(DatasetFile).where(DatasetFile.knowledge_base_id == base.id, DatasetFile.file_id == file.id)
    )
    taken = await session.scalar(
        select(Document.id).where(Document.knowledge_base_id == base.id, Document.name == name)
    )
    if taken is not None and (link is None or link.document_id != taken):
        raise Conflict(f"the dataset already has a document named {name!r}", {"field": "name"})
    upload = documents.Upload(
        "file", name, data, file.media_type, metadata={"record_source": name, "file_id": file.id}
    )
    accepted = await documents.add_and_wait(
        session,
        actor,
        base.id,
        upload,
        jobs,
        max_bytes=limits.max_bytes,
        max_unpacked_bytes=limits.max_unpacked_bytes,
        timeout_seconds=wait_seconds,
        field="fileId",
    )
    if link is None:
        link = DatasetFile(account_id=actor.account_id, knowledge_base_id=base.id, file_id=file.id, kind=kind)
        session.add(link)
    link.document_id = accepted.document.id
    try:
        await session.commit()
    except IntegrityError as error:  # attached by a concurrent request just now
        await session.rollback()
        raise Conflict("the file is being attached already", {"field": "fileId"}) from error
    return link


async def is_attached(session: AsyncSession, actor: Principal, base_id: str, file_id: str) -> bool:
    base = await bases.get_knowledge_base(session, actor, base_id)
    file = await get_file(session, actor, file_id)
    link = await session.scalar(
        select(DatasetFile.id).where(DatasetFile.knowledge_base_id == base.id, DatasetFile.file_id == file.id)
    )
    return link is not None


async def detach(
    session: AsyncSession, actor: Principal, base_id: str, file_id: str, vectors: VectorIndex
) -> None:
    actor.require("knowledge:write")
    base = await bases.get_knowledge_base(session, actor, base_id)
    file = await get_file(session, actor, file_id)
    link = await session.scalar(
        select(DatasetFile).where(DatasetFile.knowledge_base_id == base.id, DatasetFile.file_id == file.id)
    )
    if link is None:
        raise NotFound("the file is not attached to this dataset")
    await _drop_document(session, actor, link, vectors)
    await session.delete(link)
    await session.commit()


async def sync(
    session: AsyncSession,
    actor: Principal,
    file_id: str,
    jobs: JobRunner,
    limits: Limits,
    wait_seconds: float,
) -> None:
    """Indexes the file again in every base it is attached to."""
    file = await get_file(session, actor, file_id)
    for link in await _links(session, file.id):
        await attach(session, actor, link.knowledge_base_id, file.id, jobs, limits, wait_seconds, link.kind)
