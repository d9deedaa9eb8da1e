"""Multimodal processing for a caller: process a file, keep what it made, and send its text
where the caller asked (a conversation, as a message; a knowledge base, as a document
ingested as usual); or queue a batch of files as a job.

Destinations are checked before any work: another account's conversation or knowledge
base is "not found", exactly like one that does not exist.
"""

import io
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tertulia.core import conversations
from tertulia.core.errors import Invalid, TertuliaError
from tertulia.core.knowledge import bases, documents
from tertulia.core.media.files import keep_files, sweep_expired
from tertulia.core.media.processing import MediaOptions, MediaProcessor, Processed
from tertulia.core.principal import Principal
from tertulia.jobs import JobRunner
from tertulia.store.tables import Job, MediaFile

JOB_KIND = "multimodal"
MESSAGE_ROLES = ("user", "assistant", "system")
SWEEP_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class MediaUpload:
    name: str
    data: bytes
    media_type: str | None = None


@dataclass(frozen=True)
class Destinations:
    conversation_id: str | None = None
    message_role: str = "user"
    knowledge_base_id: str | None = None

    @property
    def any(self) -> bool:
        return self.conversation_id is not None or self.knowledge_base_id is not None


@dataclass(frozen=True)
class MediaSettings:
    """The server's settings this service needs."""

    retention_seconds: int
    batch_max_files: int


class MediaService:
    def __init__(self, processor: MediaProcessor, settings: MediaSettings) -> None:
        self.processor = processor
        self.settings = settings
        self._swept_at = float("-inf")

    async def close(self) -> None:
        if self.processor.tools.transcriber is not None:
            await self.processor.tools.transcriber.close()

    async def check_destinations(self, session: AsyncSession, actor: Principal, to: Destinations) -> None:
        if to.message_role not in MESSAGE_ROLES:
            raise Invalid(
                f"message_role is one of {', '.join(MESSAGE_ROLES)}",
                {"field": "options.message_role", "allowed": list(MESSAGE_ROLES)},
            )
        if to.conversation_id is not None:
            actor.require("conversations:write")
            await conversations.get_conversation(session, actor, to.conversation_id)
        if to.knowledge_base_id is not None:
            actor.require("knowledge:write")
            await bases.get_knowledge_base(session, actor, to.knowledge_base_id)

    async def process(
        self,
        session: AsyncSession,
        actor: Principal,
        upload: MediaUpload,
        options: MediaOptions,
        to: Destinations,
        jobs: JobRunner,
    ) -> dict[str, Any]:
        """The file processed, its made files kept and its text delivered: a result record."""
        self.processor.check(options)
        await self.check_destinations(session, actor, to)
        await session.commit()  # no transaction held open while the file is processed
        processed = await self.processor.process(upload.data, upload.name, upload.media_type, options)
        await self._sweep(session)
        kept = await keep_files(
            session, actor, processed.files, processed.name, self.settings.retention_seconds
        )
        await session.commit()
        delivery = await self._deliver(session, actor, upload, processed, kept, to, jobs) if to.any else None
        return result_record(processed, kept, delivery)

    async def _sweep(self, session: AsyncSession) -> None:
        if time.monotonic() - self._swept_at >= SWEEP_EVERY_SECONDS:
            self._swept_at = time.monotonic()
            await sweep_expired(session)

    async def _deliver(
        self,
        session: AsyncSession,
        actor: Principal,
        upload: MediaUpload,
        processed: Processed,
        kept: list[MediaFile],
        to: Destinations,
        jobs: JobRunner,
    ) -> dict[str, Any]:
        delivery: dict[str, Any] = {}
        text = processed.content.strip()
        if to.conversation_id is not None:
            if text:
                message = await conversations.add_message(
                    session,
                    actor,
                    to.conversation_id,
                    to.message_role,
                    text,
                    metadata={
                        "source": "multimodal",
                        "file_name": processed.name,
                        "media_type": processed.kind,
                        "file_ids": [row.id for row in kept],
                    },
                    message_type=processed.kind,
                )
                delivery |= {"conversation_id": to.conversation_id, "message_id": message.id}
            else:
                delivery["conversation_skipped"] = "no text was found in the file"
        if to.knowledge_base_id is not None:
            limits = self.processor.limits
            metadata = {"source": "multimodal", "media_type": processed.kind}
            if processed.kind in ("document", "spreadsheet"):
                # The file itself: ingestion keeps its pages, headings and sheets.
                document = documents.Upload(
                    "file", processed.name, upload.data, upload.media_type, metadata=metadata
                )
            elif text:
                document = documents.Upload(
                    "text", processed.name, text.encode(), "text/plain", metadata=metadata
                )
            else:
                delivery["knowledge_skipped"] = "no text was found in the file"
                return delivery
            accepted = await documents.add_document(
                session,
                actor,
                to.knowledge_base_id,
                document,
                jobs,
                max_bytes=limits.max_bytes,
                max_unpacked_bytes=limits.max_unpacked_bytes,
            )
            delivery |= {
                "knowledge_base_id": to.knowledge_base_id,
                "document_id": accepted.document.id,
                "job_id": accepted.job.id,
            }
        return delivery

    # --- batches ------------------------------------------------------------------------------

    async def queue_batch(
        self,
        session: AsyncSession,
        actor: Principal,
        uploads: list[MediaUpload],
        options: MediaOptions,
        to: Destinations,
        jobs: JobRunner,
    ) -> Job:
        """A job that processes the files one by one (core.media.batches), each result kept
        in the job; what can be refused at once is refused here."""
        if not uploads:
            raise Invalid("send at least one file", {"field": "files"})
        if len(uploads) > self.settings.batch_max_files:
            raise Invalid(
                f"a batch has at most {self.settings.batch_max_files} files",
                {"field": "files", "limit": self.settings.batch_max_files},
            )
        self.processor.check(options)
        await self.check_destinations(session, actor, to)
        job = Job(
            account_id=actor.account_id,
            kind=JOB_KIND,
            knowledge_base_id=to.knowledge_base_id,
            params={
                "files": [{"name": upload.name, "media_type": upload.media_type} for upload in uploads],
                "options": asdict(options),
                "destinations": asdict(to),
                # The job acts as the caller did, with the same reach.
                "scopes": sorted(actor.scopes) if actor.scopes is not None else None,
                "bot_id": actor.bot_id,
                "key_id": actor.key_id,
            },
            payload=pack([upload.data for upload in uploads]),
            result={"files": []},
        )
        session.add(job)
        await session.commit()
        await jobs.submit(job.id)
        return job

    async def wait_for_batch(self, session: AsyncSession, actor: Principal, job: Job, seconds: float) -> Job:
        """The batch job once done, or as it stands after `seconds`. Its caller made it just
        now, so a key bound to one bot may wait for it too (such a key reaches only the jobs
        of its bot's knowledge bases through /jobs)."""
        return await documents.finished_job(session, replace(actor, bot_id=None), job.id, seconds)


def pack(files: list[bytes]) -> bytes:
    """Several uploads in one job payload: a zip that stores them as they are."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for position, data in enumerate(files):
            archive.writestr(str(position), data)
    return out.getvalue()


def unpack(payload: bytes, position: int) -> bytes:
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return archive.read(str(position))


def options_from(params: dict[str, Any]) -> MediaOptions:
    values = dict(params)
    for name in ("resize", "ocr_languages"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return MediaOptions(**values)


def result_record(
    processed: Processed, kept: list[MediaFile], delivery: dict[str, Any] | None
) -> dict[str, Any]:
    """What one processed file gave, in plain JSON (a batch job keeps these)."""
    return {
        "file_name": processed.name,
        "success": True,
        "media_type": processed.kind,
        "content": processed.content,
        "metadata": processed.metadata,
        "files": [file_record(row) for row in kept],
        "processing_time": round(processed.seconds, 3),
        "delivery": delivery,
    }


def failure_record(name: str, error: TertuliaError) -> dict[str, Any]:
    return {
        "file_name": name,
        "success": False,
        "error": {"kind": error.kind, "message": error.message, "details": error.details},
    }


def file_record(row: MediaFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "media_type": row.media_type,
        "size": row.size_bytes,
        "metadata": row.meta,
        "source_name": row.source_name,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
    }
