"""Deployments sharing one Redis keep their jobs apart by queue (TERTULIA_CELERY_QUEUE): a
worker takes only the jobs sent to its own queue."""

import asyncio

import anyio
import pytest

from tertulia.settings import Settings
from tests.faces.chatagent.conftest import sign_up
from tests.faces.chatagent.test_documents import FACTS, finished, new_base, search, upload
from tests.scale.test_celery_jobs import job_row
from tests.thread_worker import ThreadWorker

pytestmark = pytest.mark.scale


async def test_a_worker_takes_only_the_jobs_of_its_own_queue(make_client, celery_settings, database) -> None:
    shared = {k: v for k, v in celery_settings.items() if k != "database_url"}
    client = await make_client(**shared, celery_queue="harbour")
    alice = await sign_up(client, "alice")
    base_id = await new_base(client, alice)

    elsewhere = ThreadWorker(Settings(**celery_settings, celery_queue="airport"))
    await anyio.to_thread.run_sync(elsewhere.start)
    try:
        accepted = await upload(client, alice, base_id, "zorvex.txt", FACTS["zorvex.txt"])
        await asyncio.sleep(3)  # time enough for a worker on the same broker to take the task
        job = await job_row(database, accepted["job"]["id"])
        assert job.status == "queued" and job.attempts == 0
    finally:
        await anyio.to_thread.run_sync(elsewhere.stop)

    own = ThreadWorker(Settings(**celery_settings, celery_queue="harbour"))
    await anyio.to_thread.run_sync(own.start)
    try:
        job = await finished(client, alice, accepted["job"]["id"])
        assert job["status"] == "done", job
        [hit] = await search(client, alice, base_id, "How do I reset the Zorvex router?", top_k=3)
        assert hit["document_id"] == accepted["id"]
    finally:
        await anyio.to_thread.run_sync(own.stop)
