"""The in-process job runner: asyncio tasks, a bounded number at a time, resumed on start."""

import asyncio
import logging
from typing import Protocol

from sqlalchemy import select, update

from tertulia.core.errors import TertuliaError
from tertulia.jobs.claims import MAX_ATTEMPTS
from tertulia.store.session import Database
from tertulia.store.tables import Job, utcnow

log = logging.getLogger("tertulia.jobs")


class Handler(Protocol):
    """Runs one kind of job, given its id; updates the job row itself."""

    async def __call__(self, job_id: str) -> None: ...

    async def failed(self, job_id: str, reason: str) -> None:
        """Told when the runner gives the job up for a reason of its own (a time limit, a
        crash, too many attempts), so that what the job worked on can say so."""


class JobRunner(Protocol):
    async def start(self) -> None:
        """Picks up jobs left queued or running by a previous process."""
        ...

    async def submit(self, job_id: str) -> None:
        """Runs the job (already committed as queued) in the background."""
        ...

    async def stop(self) -> None: ...


class InlineJobs:
    """Runs jobs as tasks of this process's event loop; the heavy steps inside a handler run
    in threads, so the request path never waits on them."""

    def __init__(self, database: Database, handlers: dict[str, Handler], concurrency: int = 1) -> None:
        self._database = database
        self._handlers = handlers
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        async with self._database.session() as session:
            # A job "running" when its process died is run again from the start.
            await session.execute(update(Job).where(Job.status == "running").values(status="queued"))
            await session.commit()
            pending = list(
                await session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.created_at))
            )
        for job_id in pending:
            await self.submit(job_id)

    async def submit(self, job_id: str) -> None:
        if self._stopping:
            return  # left queued: the next start picks it up
        task = asyncio.create_task(self._run(job_id), name=f"job {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job_id: str) -> None:
        async with self._slots:
            async with self._database.session() as session:
                job = await session.get(Job, job_id)
                if job is None or job.status != "queued":
                    return
                handler = self._handlers.get(job.kind)
                job.attempts += 1
                if handler is None:
                    job.status, job.error = "failed", f"no handler for {job.kind!r}"
                    job.finished_at = utcnow()
                    await session.commit()
                    return
                if job.attempts > MAX_ATTEMPTS:
                    await session.commit()
                    await self._give_up(handler, job_id, "gave up after repeated attempts")
                    return
                job.status, job.started_at = "running", utcnow()
                await session.commit()
            try:
                await handler(job_id)
            except asyncio.CancelledError:
                raise  # stopping: the job stays "running" and is resumed on the next start
            except TertuliaError as error:
                await self._fail(job_id, error.message)
            except Exception as error:  # a bug, not the user's input: keep the details in the log
                log.exception("job %s failed", job_id)
                await self._give_up(handler, job_id, f"internal error ({type(error).__name__})")

    async def _give_up(self, handler: Handler, job_id: str, reason: str) -> None:
        await self._fail(job_id, reason)
        await handler.failed(job_id, reason)

    async def _fail(self, job_id: str, reason: str) -> None:
        async with self._database.session() as session:
            job = await session.get(Job, job_id)
            if job is not None:
                job.status, job.error, job.finished_at = "failed", reason, utcnow()
                await session.commit()

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Waits until no job is running (tests, and a graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
