"""The in-process runner giving a job up: a handler that fails unexpectedly, or a job tried too
often, ends `failed` with the reason, and its handler is told, so that the document it worked
on says so instead of staying "processing"."""

from tertulia.jobs import InlineJobs
from tertulia.jobs.claims import MAX_ATTEMPTS
from tertulia.store.session import Database
from tertulia.store.tables import Job
from tests.jobs.test_claims import queued_job, status


class Faulty:
    """A handler with a bug: it raises what no handler should."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    async def __call__(self, job_id: str) -> None:
        raise RuntimeError("a bug, with a detail that stays in the log")

    async def failed(self, job_id: str, reason: str) -> None:
        self.told.append((job_id, reason))


async def test_an_unexpected_failure_fails_the_job_and_tells_its_handler(database: Database) -> None:
    job_id = await queued_job(database)
    handler = Faulty()
    jobs = InlineJobs(database, {"ingest": handler})
    await jobs.submit(job_id)
    await jobs.idle()
    assert await status(database, job_id) == ("failed", 1, "internal error (RuntimeError)")
    assert handler.told == [(job_id, "internal error (RuntimeError)")]


async def test_a_job_tried_too_often_is_given_up(database: Database) -> None:
    job_id = await queued_job(database)
    async with database.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        job.attempts = MAX_ATTEMPTS
        await session.commit()
    handler = Faulty()
    jobs = InlineJobs(database, {"ingest": handler})
    await jobs.submit(job_id)
    await jobs.idle()
    reason = "gave up after repeated attempts"
    assert await status(database, job_id) == ("failed", MAX_ATTEMPTS + 1, reason)
    assert handler.told == [(job_id, reason)]
