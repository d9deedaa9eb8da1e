"""What a running server holds once: settings, database, rate limiter, signing secret,
models, the chat engine, the knowledge index, the job runner and conversation events; and
what a worker process holds to run jobs."""

import time
from dataclasses import dataclass, field
from datetime import timedelta

import anyio

from tertulia import __version__
from tertulia.core.accounts import signing_secret
from tertulia.core.chat import ChatEngine
from tertulia.core.conversation_events import ConversationEvents, announce_commits, conversation_events
from tertulia.core.knowledge.fetching import FetchLimits
from tertulia.core.knowledge.ingest import IngestLimits, Ingestor
from tertulia.core.knowledge.query_cache import query_vectors
from tertulia.core.knowledge.retrieval import Retriever
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.media import JOB_KIND as MEDIA_JOB
from tertulia.core.media import (
    MediaBatches,
    MediaLimits,
    MediaProcessor,
    MediaService,
    MediaSettings,
    find_tools,
)
from tertulia.core.monitoring import Recorder, install_log_capture, use_recorder
from tertulia.core.ratelimit import RateLimiter
from tertulia.jobs import Handler, InlineJobs, JobRunner
from tertulia.providers.registry import ModelRegistry
from tertulia.providers.speech import transcriber_for
from tertulia.settings import Settings
from tertulia.store import pgvector
from tertulia.store.chroma import ChromaStore
from tertulia.store.sealed import seal_with
from tertulia.store.session import Database


@dataclass
class Runtime:
    settings: Settings
    database: Database
    rate_limiter: RateLimiter
    secret: str
    models: ModelRegistry
    chat: ChatEngine
    retriever: Retriever
    vectors: VectorIndex
    jobs: JobRunner
    events: ConversationEvents
    replies_database: Database
    media: MediaService
    recorder: Recorder
    version: str = __version__
    started_at: float = field(default_factory=time.monotonic)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def close(self) -> None:
        await self.jobs.stop()
        await self.media.close()
        await self.recorder.close()
        await self.events.close()
        await self.rate_limiter.close()
        await self.retriever.close()
        self.vectors.close()
        await self.models.close()
        await self.replies_database.dispose()
        await self.database.dispose()


@dataclass
class WorkerRuntime:
    """A `tertulia worker` process's share: the job handlers and what they run on."""

    database: Database
    models: ModelRegistry
    vectors: VectorIndex
    handlers: dict[str, Handler]
    media: MediaService
    jobs: JobRunner  # what its jobs submit further jobs to (a batch's ingestion)

    async def close(self) -> None:
        await self.jobs.stop()
        await self.media.close()
        self.vectors.close()
        await self.models.close()
        await self.database.dispose()


async def _open_database(settings: Settings) -> tuple[Database, str]:
    """The database, with sealed columns readable: every process signs and seals alike."""
    database = Database(settings.database_url)
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    async with database.session() as session:
        secret = await signing_secret(session, configured)
    seal_with(database.engine, secret)
    return database, secret


async def _vector_index(settings: Settings, database: Database) -> VectorIndex:
    """The knowledge index; whether the database keeps vectors in pgvector is asked once
    here, by the API and the worker processes alike."""
    return VectorIndex(
        ChromaStore(
            path=settings.chroma_folder(),
            url=settings.chroma_url,
            token=settings.chroma_token.get_secret_value() if settings.chroma_token else None,
            timeout_seconds=settings.chroma_timeout_seconds,
        ),
        pgvector=await pgvector.present(database),
    )


async def _media_service(settings: Settings) -> MediaService:
    """Multimodal processing, with the tools this machine has (looked for once, in a thread)."""
    tools = await anyio.to_thread.run_sync(find_tools, transcriber_for(settings))
    limits = MediaLimits(
        max_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        max_pixels=settings.media_max_pixels,
        max_duration_seconds=settings.media_max_duration_seconds,
        max_pages=settings.media_max_pages,
        max_frames=settings.media_max_frames,
    )
    processor = MediaProcessor(limits, tools, settings.ocr_languages, settings.media_concurrency)
    return MediaService(
        processor,
        MediaSettings(
            retention_seconds=settings.media_file_retention_seconds,
            batch_max_files=settings.media_batch_max_files,
        ),
    )


def _job_handlers(
    settings: Settings, database: Database, models: ModelRegistry, vectors: VectorIndex, media: MediaService
) -> dict[str, Handler]:
    limits = IngestLimits(
        max_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        fetch=FetchLimits(
            max_bytes=settings.max_upload_bytes, timeout_seconds=settings.fetch_timeout_seconds
        ),
        allow_private_urls=settings.allow_private_urls,
    )
    return {"ingest": Ingestor(database, models, vectors, limits), MEDIA_JOB: MediaBatches(database, media)}


def _submit_to(handlers: dict[str, Handler], jobs: JobRunner) -> None:
    batches = handlers[MEDIA_JOB]
    assert isinstance(batches, MediaBatches)
    batches.submit_to(jobs)


async def start_worker_runtime(settings: Settings) -> WorkerRuntime:
    from tertulia.jobs.celery_app import CeleryJobs  # a worker is a Celery worker

    database, _secret = await _open_database(settings)
    models = ModelRegistry(settings)
    vectors = await _vector_index(settings, database)
    media = await _media_service(settings)
    handlers = _job_handlers(settings, database, models, vectors, media)
    jobs = CeleryJobs(database, settings)
    _submit_to(handlers, jobs)
    return WorkerRuntime(database, models, vectors, handlers, media, jobs)


async def start_runtime(settings: Settings) -> Runtime:
    database, secret = await _open_database(settings)
    limiter = RateLimiter(
        settings.rate_limit_plans,
        settings.anonymous_rate_limit,
        settings.redis_url or settings.rate_limit_storage,
        settings.redis_timeout_seconds,
        visitor=settings.widget_visitor_rate_limit,
    )
    events = conversation_events(settings.redis_url, settings.redis_timeout_seconds)
    models = ModelRegistry(settings)
    vectors = await _vector_index(settings, database)
    async with database.session() as session:
        await vectors.sweep(session)
    # Replies get connections of their own: a request holds its session's connection while
    # the chat engine opens sessions to read history and store the reply, so with one pool a
    # burst of replies could take every connection and each wait forever for a second one.
    replies = Database(settings.database_url)
    seal_with(replies.engine, secret)
    # Both pools store messages (replies; REST calls, operators): watchers hear of either.
    announce_commits(database, events)
    announce_commits(replies, events)
    queries = query_vectors(
        settings.redis_url,
        settings.redis_timeout_seconds,
        settings.query_cache_seconds,
        settings.query_cache_size,
    )
    retriever = Retriever(replies, models, vectors, queries)
    tool_options = {
        "weather": {
            "forecast_url": settings.weather_forecast_url,
            "geocoding_url": settings.weather_geocoding_url,
            "timeout_seconds": settings.tool_timeout_seconds,
        }
    }
    chat = ChatEngine(replies, models, settings.token_quota, retriever, tool_options)
    media = await _media_service(settings)
    jobs: JobRunner
    if settings.jobs == "celery":
        from tertulia.jobs.celery_app import CeleryJobs  # Celery is an optional extra (`scale`)

        jobs = CeleryJobs(database, settings)
    else:
        handlers = _job_handlers(settings, database, models, vectors, media)
        jobs = InlineJobs(database, handlers, concurrency=settings.ingest_concurrency)
        _submit_to(handlers, jobs)
    recorder = Recorder(
        database, settings.monitoring_flush_seconds, timedelta(days=settings.monitoring_retention_days)
    )
    install_log_capture()
    # Tasks started from here on (jobs resumed below) keep their log lines with this recorder.
    use_recorder(recorder)
    runtime = Runtime(
        settings,
        database,
        limiter,
        secret,
        models,
        chat,
        retriever,
        vectors,
        jobs,
        events,
        replies,
        media,
        recorder,
    )
    await recorder.start()
    await events.start()
    await jobs.start()
    return runtime
