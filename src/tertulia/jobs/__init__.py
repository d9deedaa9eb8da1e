"""Background work: a job row says what to do and how far it got; a runner does it.

The runner is a seam: `InlineJobs` runs jobs in this process (the embedded default); the
scale-out issue adds a Celery runner behind the same two calls, `submit` and `start`.
Handlers are idempotent: a job that is run again (after a crash, or twice) ends in the same
state as a job run once.
"""

from tertulia.jobs.runner import Handler, InlineJobs, JobRunner

__all__ = ["Handler", "InlineJobs", "JobRunner"]
