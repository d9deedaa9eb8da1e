"""Ingestion on Celery workers: real `tertulia worker` processes, a real Redis broker, the
test's database shared by the API and the workers."""

import asyncio
import time

import pytest
from sqlalchemy import select

from tertulia.jobs.celery_app import TASK_NAME, celery_app
from tertulia.settings import Settings
from tertulia.store.session import Database
from tertulia.store.tables import Chunk, Document, Job
from tests.faces.chatagent.conftest import sign_up
from tests.faces.chatagent.test_documents import FACTS, finished, new_base, search, upload

pytestmark = pytest.mark.scale


async def job_row(database: Database, job_id: str) -> Job:
    async with database.session() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def settled(database: Database, job_id: str, seconds: float = 120) -> Job:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = await job_row(database, job_id)
        if job.status in ("done", "failed"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {seconds} s")


async def stored_chunks(database: Database, document_id: str) -> tuple[Document, list[tuple[int, int]]]:
    """The document, and (generation, position) of each of its chunks."""
    async with database.session() as session:
        document = await session.get(Document, document_id)
        assert document is not None
        rows = await session.execute(
            select(Chunk.generation, Chunk.position).where(Chunk.document_id == document_id)
        )
        return document, sorted((row.generation, row.position) for row in rows)


def assert_chunks_once(document: Document, chunks: list[tuple[int, int]]) -> None:
    assert document.status == "ready" and document.chunk_count > 0
    assert chunks == [(document.generation, position) for position in range(document.chunk_count)]


async def test_an_upload_is_ingested_by_a_worker_and_found(celery_client, start_worker, database) -> None:
    worker = start_worker()
    alice = await sign_up(celery_client, "alice")
    base_id = await new_base(celery_client, alice)
    accepted = await upload(celery_client, alice, base_id, "zorvex.txt", FACTS["zorvex.txt"], title="Router")

    job = await finished(celery_client, alice, accepted["job"]["id"])
    assert job["status"] == "done", (job, worker.output())
    assert job["progress"] == 1.0 and {"parse", "chunk", "embed", "store"} <= set(job["stages"])
    [hit] = await search(celery_client, alice, base_id, "How do I reset the Zorvex router?", top_k=3)
    assert "12 seconds" in hit["content"] and hit["document_id"] == accepted["id"]
    assert hit["metadata"]["title"] == "Router"
    assert_chunks_once(*await stored_chunks(database, accepted["id"]))


async def test_a_task_delivered_twice_stores_the_chunks_once(
    celery_client, start_worker, database, celery_settings
) -> None:
    alice = await sign_up(celery_client, "alice")
    base_id = await new_base(celery_client, alice, chunk_size=60, chunk_overlap=0)
    text = "\n\n".join(f"Part {n}: the greenhouse valve {n} opens at {n * 3} degrees." for n in range(40))
    accepted = await upload(celery_client, alice, base_id, "valves.txt", text)
    job_id = accepted["job"]["id"]
    broker = celery_app(Settings(**celery_settings))
    broker.send_task(TASK_NAME, args=[job_id])  # the same job again, before any worker runs

    worker = start_worker(concurrency=2)  # both deliveries at once, one per process
    job = await settled(database, job_id)
    assert job.status == "done", (job.error, worker.output())
    again = broker.send_task(TASK_NAME, args=[job_id])  # and once more, after it is done
    deadline = time.monotonic() + 60
    while f"{again.id}] succeeded" not in worker.output():
        assert time.monotonic() < deadline, worker.output()
        await asyncio.sleep(0.2)
    broker.close()

    job = await job_row(database, job_id)
    assert job.status == "done" and job.attempts == 1  # one delivery ran it, the others stepped aside
    document, chunks = await stored_chunks(database, accepted["id"])
    assert document.generation == 1 and document.chunk_count > 1
    assert_chunks_once(document, chunks)


async def test_a_worker_killed_mid_ingestion_leaves_the_document_to_the_next(
    celery_client, start_worker, database
) -> None:
    alice = await sign_up(celery_client, "alice")
    base_id = await new_base(celery_client, alice, chunk_size=60, chunk_overlap=0)
    lines = [f"Section {n}: shelf {n} of the archive holds the {n}th ledger of tides." for n in range(120)]
    lines[77] = "Section 77: the lighthouse keeper's spare key hangs behind the barometer."
    accepted = await upload(celery_client, alice, base_id, "archive.txt", "\n\n".join(lines))
    job_id = accepted["job"]["id"]

    first = start_worker()
    deadline = time.monotonic() + 120
    while True:  # until some of the chunks are embedded, and not all
        job = await job_row(database, job_id)
        if job.stage == "embed" and 0.2 < job.progress < 0.9:
            break
        assert job.status in ("queued", "running") and time.monotonic() < deadline, (job, first.output())
        await asyncio.sleep(0.05)
    first.kill()
    job = await job_row(database, job_id)
    assert job.status == "running" and job.attempts == 1
    document, chunks = await stored_chunks(database, accepted["id"])
    assert document.status == "processing" and chunks == []

    second = start_worker()
    job = await settled(database, job_id)
    assert job.status == "done", (job.error, second.output())
    assert job.attempts == 2  # the second worker took over once the first one's lease ran out
    document, chunks = await stored_chunks(database, accepted["id"])
    assert_chunks_once(document, chunks)
    assert document.chunk_count >= 40
    [hit, *_] = await search(celery_client, alice, base_id, "Where is the lighthouse keeper's spare key?")
    assert "barometer" in hit["content"]


async def test_a_job_past_the_time_limit_is_stopped_and_failed(celery_client, start_worker, database) -> None:
    alice = await sign_up(celery_client, "alice")
    base_id = await new_base(celery_client, alice, chunk_size=60, chunk_overlap=0)
    lines = [f"Section {n}: shelf {n} of the archive holds the {n}th ledger of tides." for n in range(120)]
    accepted = await upload(celery_client, alice, base_id, "archive.txt", "\n\n".join(lines))

    worker = start_worker(job_time_limit_seconds=1)
    job = await settled(database, accepted["job"]["id"])
    assert job.status == "failed" and job.error == "stopped after 1 seconds", worker.output()
    assert job.attempts == 1  # not tried again: it would take as long the next time
    document, chunks = await stored_chunks(database, accepted["id"])
    assert chunks == []
    # The document says why, rather than staying "processing" for ever.
    assert (document.status, document.error) == ("failed", "stopped after 1 seconds")
