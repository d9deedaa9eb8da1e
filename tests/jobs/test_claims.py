"""Claims on a job row: one runner at a time, a dead runner's job taken over when its lease
runs out, and a runner that was taken over kept from finishing the job."""

import asyncio

from tertulia.core.accounts import NewAccount, register
from tertulia.jobs.claims import Claim, HeldElsewhere, claim_job, fail, release, renew_lease
from tertulia.store.session import Database
from tertulia.store.tables import Job


async def queued_job(database: Database) -> str:
    async with database.session() as session:
        account = await register(session, NewAccount("owner@example.com", "a long secret", "owner"))
        job = Job(account_id=account.id, kind="ingest")
        session.add(job)
        await session.commit()
        return job.id


async def status(database: Database, job_id: str) -> tuple[str, int, str | None]:
    async with database.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job.status, job.attempts, job.error


async def test_of_runners_claiming_at_once_one_wins(database: Database) -> None:
    job_id = await queued_job(database)
    claims = await asyncio.gather(*(claim_job(database, job_id, 30) for _ in range(5)))
    [won] = [claim for claim in claims if isinstance(claim, Claim)]
    assert won.kind == "ingest" and won.attempt == 1
    assert all(isinstance(claim, HeldElsewhere) for claim in claims if claim is not won)
    assert await status(database, job_id) == ("running", 1, None)


async def test_a_lease_that_runs_out_lets_the_job_be_taken_over_and_fences_the_first(
    database: Database,
) -> None:
    job_id = await queued_job(database)
    first = await claim_job(database, job_id, 0.2)
    assert isinstance(first, Claim)
    assert await renew_lease(database, first, 0.2)
    await asyncio.sleep(0.3)
    second = await claim_job(database, job_id, 30)
    assert isinstance(second, Claim) and second.attempt == 2
    assert not await renew_lease(database, first, 30)  # the first runner learns it lost the job
    await fail(database, first, "too late")  # and cannot settle it
    assert await status(database, job_id) == ("running", 2, None)


async def test_a_released_job_is_claimed_again_and_a_settled_one_never(database: Database) -> None:
    job_id = await queued_job(database)
    first = await claim_job(database, job_id, 30)
    assert isinstance(first, Claim)
    await release(database, first)
    again = await claim_job(database, job_id, 30)
    assert isinstance(again, Claim) and again.attempt == 2
    await fail(database, again, "no text to index")
    assert await claim_job(database, job_id, 30) is None
    assert await status(database, job_id) == ("failed", 2, "no text to index")
