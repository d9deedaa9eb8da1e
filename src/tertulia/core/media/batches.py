"""The job of a multimodal batch: its files processed one by one, each result (or the reason
it failed) stored in the job as soon as it is known, so GET /jobs/{id} shows progress.

A job run again (its process died, a second delivery) goes on after the last file whose
result it kept: no file is processed, kept or delivered twice.
"""

from typing import Any

from sqlalchemy import update

from tertulia.core.errors import TertuliaError
from tertulia.core.media.service import (
    Destinations,
    MediaService,
    MediaUpload,
    failure_record,
    options_from,
    unpack,
)
from tertulia.core.principal import Principal
from tertulia.jobs import JobRunner
from tertulia.jobs.claims import holds
from tertulia.store.session import Database
from tertulia.store.tables import Account, Job, utcnow


class MediaBatches:
    """The handler of `multimodal` jobs."""

    def __init__(self, database: Database, service: MediaService) -> None:
        self._database = database
        self._service = service
        self._jobs: JobRunner | None = None

    def submit_to(self, jobs: JobRunner) -> None:
        """The runner that ingests what a batch sends to a knowledge base (known only once
        the runner, which holds this handler, exists)."""
        self._jobs = jobs

    async def __call__(self, job_id: str) -> None:
        async with self._database.session() as session:
            job = await session.get(Job, job_id)
            account = await session.get(Account, job.account_id) if job is not None else None
            if job is None or account is None:
                return
            attempt, params, payload = job.attempts, dict(job.params), job.payload or b""
            results = list((job.result or {}).get("files", []))
        scopes = params.get("scopes")
        actor = Principal(
            account,
            scopes=frozenset(scopes) if scopes is not None else None,
            bot_id=params.get("bot_id"),
            key_id=params.get("key_id"),
        )
        options = options_from(params["options"])
        to = Destinations(**params["destinations"])
        files = params["files"]
        for position in range(len(results), len(files)):
            name, media_type = files[position]["name"], files[position].get("media_type")
            async with self._database.session() as session:
                try:
                    if self._jobs is None:
                        raise RuntimeError("the media batch handler was given no job runner")
                    upload = MediaUpload(name, unpack(payload, position), media_type)
                    record = await self._service.process(session, actor, upload, options, to, self._jobs)
                except TertuliaError as error:
                    await session.rollback()
                    record = failure_record(name, error)
            results.append(record)
            if not await self._store(job_id, attempt, results, len(files)):
                return  # another runner took the job over, or it was removed

    async def _store(self, job_id: str, attempt: int, results: list[dict[str, Any]], total: int) -> bool:
        finished = len(results) == total
        values = {
            "result": {"files": results},
            "progress": round(len(results) / total, 3),
            "stage": "done" if finished else f"file {len(results) + 1} of {total}",
        }
        if finished:
            values |= {"status": "done", "payload": None, "finished_at": utcnow()}
        async with self._database.session() as session:
            stored = await session.execute(
                update(Job)
                .where(holds(job_id, attempt))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return bool(stored.rowcount)  # type: ignore[attr-defined]

    async def failed(self, job_id: str, reason: str) -> None:
        """Nothing beside the job to mark: the results kept so far stay readable in it."""
        return None
