"""Who runs a job: a runner claims the job row in one statement, under a lease it renews.

A broker may hand the same job to several runners (Celery delivers at least once: a task
whose worker seemed gone is delivered again). Of those, the one whose claim moves the row
from queued to running does the work; the others find it running under a live lease, or
finished, and step aside. A runner that died leaves a lease that runs out, and the next
claim takes the job over. Each claim counts an attempt; the count fences the runners, so a
runner that was taken over can no longer finish the job (see `holds`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from tertulia.store.session import Database
from tertulia.store.tables import Job, utcnow

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """This runner holds the job; `attempt` is the job's attempt count its claim made."""

    job_id: str
    kind: str
    attempt: int


@dataclass(frozen=True)
class HeldElsewhere:
    """Another runner holds the job until `until` (when it may be taken over)."""

    until: datetime


def holds(job_id: str, attempt: int) -> ColumnElement[bool]:
    """The condition under which the runner of `attempt` still holds the job."""
    return and_(Job.id == job_id, Job.status == "running", Job.attempts == attempt)


def unattended(now: datetime) -> ColumnElement[bool]:
    """Jobs no runner works on: queued, or running under a lease that ran out."""
    return or_(
        Job.status == "queued",
        and_(
            Job.status == "running",
            # A running job with no lease was started by a runner that keeps none (InlineJobs,
            # which resumes its own jobs when it starts again).
            or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
        ),
    )


async def claim_job(database: Database, job_id: str, lease_seconds: float) -> Claim | HeldElsewhere | None:
    """Claims the job if no runner works on it; None when there is nothing to do (no such job
    any more, or it finished)."""
    now = utcnow()
    async with database.session() as session:
        claimed = (
            await session.execute(
                update(Job)
                .where(Job.id == job_id, unattended(now))
                .values(
                    status="running",
                    attempts=Job.attempts + 1,
                    started_at=now,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                )
                .returning(Job.kind, Job.attempts)
                .execution_options(synchronize_session=False)
            )
        ).first()
        await session.commit()
        if claimed is not None:
            return Claim(job_id, claimed.kind, claimed.attempts)
        state = select(Job.status, Job.lease_expires_at).where(Job.id == job_id)
        job = (await session.execute(state)).first()
    if job is None or job.status not in ("queued", "running"):
        return None
    return HeldElsewhere(job.lease_expires_at or now)


async def renew_lease(database: Database, claim: Claim, lease_seconds: float) -> bool:
    """Extends the lease; False when the runner no longer holds the job."""
    async with database.session() as session:
        renewed = await session.execute(
            update(Job)
            .where(holds(claim.job_id, claim.attempt))
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


async def release(database: Database, claim: Claim) -> None:
    """Puts the job back in the queue, for a retry of this runner's own choosing."""
    async with database.session() as session:
        await session.execute(
            update(Job)
            .where(holds(claim.job_id, claim.attempt))
            .values(status="queued", lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        await session.commit()


async def fail(database: Database, claim: Claim, reason: str) -> bool:
    """Marks the job failed, if this runner still holds it (and says whether it did)."""
    async with database.session() as session:
        failed = await session.execute(
            update(Job)
            .where(holds(claim.job_id, claim.attempt))
            .values(status="failed", error=reason, finished_at=utcnow(), lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    return bool(failed.rowcount)  # type: ignore[attr-defined]
