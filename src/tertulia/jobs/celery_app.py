"""The Celery runner: the API sends a task naming a job; `tertulia worker` processes run it.

A task carries the job id only and its result is ignored: the job row is the source of truth,
as with InlineJobs. Delivery is at least once (late acknowledgement, a task of a lost worker
put back, a short visibility timeout), and claims.py makes a second delivery harmless.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import anyio
import httpx
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_shutdown
from celery.utils.time import get_exponential_backoff_interval
from kombu.exceptions import OperationalError as BrokerUnreachable
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from tertulia.core.errors import TertuliaError
from tertulia.jobs.claims import (
    MAX_ATTEMPTS,
    Claim,
    HeldElsewhere,
    claim_job,
    fail,
    release,
    renew_lease,
    unattended,
)
from tertulia.jobs.runner import Handler
from tertulia.settings import Settings
from tertulia.store.session import Database
from tertulia.store.tables import Job, utcnow

log = logging.getLogger("tertulia.jobs")

TASK_NAME = "tertulia.run_job"
# Failures worth another try: the database or a remote service briefly out of reach.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError, httpx.TransportError)
RETRY_BACKOFF_SECONDS = 2
# Celery's own limits stop a job only if the runner's (an asyncio timeout) could not.
CELERY_LIMIT_GRACE_SECONDS = 30


def celery_app(settings: Settings) -> Celery:
    visibility = settings.celery_visibility_timeout_seconds
    app = Celery("tertulia", broker=settings.celery_broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,  # they are delivered again
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,  # where tasks are sent, and what workers consume
        task_serializer="json",
        accept_content=["json"],
        task_soft_time_limit=settings.job_time_limit_seconds + CELERY_LIMIT_GRACE_SECONDS,
        task_time_limit=settings.job_time_limit_seconds + 2 * CELERY_LIMIT_GRACE_SECONDS,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility,
            # Workers look for tasks left unacknowledged this often (kombu's default is 100 s).
            "unacked_restore_interval": max(1, min(10, visibility // 2)),
            "unacked_restore_throttle": 1,
        },
    )
    return app


class CeleryJobs:
    """The API side: each submitted job becomes a task on the broker."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self._database = database
        self._app = celery_app(settings)

    async def start(self) -> None:
        # Jobs whose task may be lost (the broker was down when they were submitted, or lost
        # its data) are sent again; a task for a job already under way does nothing.
        async with self._database.session() as session:
            query = select(Job.id).where(unattended(utcnow())).order_by(Job.created_at)
            pending = list(await session.scalars(query))
        for job_id in pending:
            await self.submit(job_id)

    async def submit(self, job_id: str) -> None:
        try:
            await anyio.to_thread.run_sync(partial(self._app.send_task, TASK_NAME, args=[job_id]))
        except BrokerUnreachable as error:
            log.error("job %s stays queued until the next start: no broker (%s)", job_id, error)

    async def stop(self) -> None:
        await anyio.to_thread.run_sync(self._app.close)


class JobHost(Protocol):
    """What a worker process needs to run jobs, built from Settings like the API's runtime."""

    database: Database
    handlers: dict[str, Handler]

    async def close(self) -> None: ...


@dataclass(frozen=True)
class NextTry:
    countdown: float
    error: Exception | None = None


class JobExecution:
    """Runs one delivered job: claims it, keeps its lease while the handler works, and says
    whether (and when) the task should be tried again."""

    def __init__(self, host: JobHost, settings: Settings) -> None:
        self._host = host
        self._lease = settings.job_lease_seconds
        self._time_limit = settings.job_time_limit_seconds
        self._longest_wait = max(1.0, settings.celery_visibility_timeout_seconds / 2)
        self.claim: Claim | None = None

    async def __call__(self, job_id: str) -> NextTry | None:
        database = self._host.database
        claimed = await claim_job(database, job_id, self._lease)
        if claimed is None:
            return None  # done, failed or deleted: a delivery of a job already settled
        if isinstance(claimed, HeldElsewhere):
            # Its holder is at work, or died and its lease runs out soon: look again then,
            # before the broker would deliver this waiting task a second time.
            wait = (claimed.until - utcnow()).total_seconds() + 0.5
            return NextTry(min(max(wait, 0.5), self._longest_wait))
        self.claim = claimed
        handler = self._host.handlers.get(claimed.kind)
        if handler is None:
            await fail(database, claimed, f"no handler for {claimed.kind!r}")
            return None
        if claimed.attempt > MAX_ATTEMPTS:
            await self._give_up(handler, claimed, "gave up after repeated attempts")
            return None
        return await self._run(handler, claimed)

    async def _run(self, handler: Handler, claim: Claim) -> NextTry | None:
        database = self._host.database
        running = asyncio.current_task()
        assert running is not None
        taken_over = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(claim, running, taken_over))
        deadline = asyncio.timeout(self._time_limit)
        try:
            async with deadline:
                await handler(claim.job_id)
            return None
        except asyncio.CancelledError:
            if not taken_over.is_set():
                raise
            log.warning("job %s was taken over by another worker; this run stops", claim.job_id)
            return None
        except TertuliaError as error:  # the user's input: the handler has said why
            await fail(database, claim, error.message)
            return None
        except TRANSIENT as error:
            if deadline.expired():
                await self._give_up(handler, claim, f"stopped after {self._time_limit} seconds")
                return None
            if claim.attempt >= MAX_ATTEMPTS:
                log.exception("job %s failed on its last attempt", claim.job_id)
                reason = f"gave up after {claim.attempt} attempts ({type(error).__name__})"
                await self._give_up(handler, claim, reason)
                return None
            log.warning("job %s: %s; it will be tried again", claim.job_id, error)
            await release(database, claim)
            backoff = get_exponential_backoff_interval(
                RETRY_BACKOFF_SECONDS, claim.attempt, int(self._longest_wait), full_jitter=True
            )
            return NextTry(max(backoff, 1), error)
        except Exception as error:  # a bug, not the user's input: keep the details in the log
            log.exception("job %s failed", claim.job_id)
            await self._give_up(handler, claim, f"internal error ({type(error).__name__})")
            return None
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _give_up(self, handler: Handler, claim: Claim, reason: str) -> None:
        """Fails the job and tells its handler, unless another runner has taken it over."""
        if await fail(self._host.database, claim, reason):
            await handler.failed(claim.job_id, reason)

    async def _keep_lease(self, claim: Claim, running: asyncio.Task[Any], taken_over: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                held = await renew_lease(self._host.database, claim, self._lease)
            except TRANSIENT as error:  # try again at the next beat; the lease has two more
                log.warning("job %s: could not renew its lease (%s)", claim.job_id, error)
                continue
            if not held:
                taken_over.set()
                running.cancel()
                return


class WorkerProcess:
    """What one worker process keeps between tasks: its event loop, and the job host built on
    it (opened on the first task, after the pool has forked the process)."""

    def __init__(self, open_host: Callable[[], Awaitable[JobHost]]) -> None:
        self._loop = asyncio.Runner()
        self.host: JobHost = self.run(open_host())

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self._loop.run(coroutine)

    def close(self) -> None:
        try:
            self.run(self.host.close())
        finally:
            self._loop.close()


def register_job_task(
    app: Celery, settings: Settings, open_host: Callable[[], Awaitable[JobHost]]
) -> Callable[[], None]:
    """Registers the task that runs jobs; returns what closes the job host it opened (to be
    called where the tasks ran, once the worker has stopped taking them)."""
    process: WorkerProcess | None = None

    def current() -> WorkerProcess:
        nonlocal process
        if process is None:
            process = WorkerProcess(open_host)
        return process

    def close_process() -> None:
        nonlocal process
        if process is not None:
            opened, process = process, None
            opened.close()

    # Not shared: a task registered on every Celery app of the process would, in a second app,
    # run the first one's settings and database.
    @app.task(name=TASK_NAME, bind=True, max_retries=None, shared=False)
    def run_job(task: Task, job_id: str) -> None:
        nonlocal process
        worker = current()
        execution = JobExecution(worker.host, settings)
        try:
            next_try = worker.run(execution(job_id))
        except SoftTimeLimitExceeded:
            # Raised wherever the event loop was: the loop is not to be trusted any more.
            process = None
            asyncio.run(_fail_after_limit(settings, execution.claim))
            raise
        if next_try is not None:
            raise task.retry(countdown=next_try.countdown, exc=next_try.error)

    return close_process


async def _fail_after_limit(settings: Settings, claim: Claim | None) -> None:
    if claim is None:
        return
    database = Database(settings.database_url)
    try:
        await fail(database, claim, f"stopped after {settings.job_time_limit_seconds} seconds")
    finally:
        await database.dispose()


def run_worker(settings: Settings, open_host: Callable[[], Awaitable[JobHost]], concurrency: int) -> None:
    """Runs a Celery worker with `concurrency` processes until it is told to stop."""
    app = celery_app(settings)
    close_process = register_job_task(app, settings, open_host)
    # Each pool process opens its job host on its first task, and closes it when it ends.
    worker_process_shutdown.connect(lambda **_: close_process(), weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )
