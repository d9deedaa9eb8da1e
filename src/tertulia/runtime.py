"""What a running server holds once: settings, database, rate limiter, signing secret,
models, the chat engine, the knowledge index, the job runner and conversation events; and
what a worker process holds to run jobs."""

import time
from dataclasses import dataclass, field
from datetime import timedelta

from tertulia import __version__
from tertulia.core.accounts import signing_secret
from tertulia.core.chat import ChatEngine
from tertulia.core.conversation_events import ConversationEvents, announce_commits, conversation_events
from tertulia.core.knowledge.fetching import FetchLimits
from tertulia.core.knowledge.ingest import IngestLimits, Ingestor
from tertulia.core.knowledge.query_cache import query_vectors
from tertulia.core.knowledge.retrieval import Retriever
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.monitoring import Recorder, install_log_capture, use_recorder
from tertulia.core.ratelimit import RateLimiter
from tertulia.jobs import Handler, InlineJobs, JobRunner
from tertulia.providers.registry import ModelRegistry
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
    recorder: Recorder
    version: str = __version__
    started_at: float = field(default_factory=time.monotonic)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def close(self) -> None:
        await self.jobs.stop()
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

    async def close(self) -> None:
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


def _job_handlers(
    settings: Settings, database: Database, models: ModelRegistry, vectors: VectorIndex
) -> dict[str, Handler]:
    limits = IngestLimits(
        max_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        fetch=FetchLimits(
            max_bytes=settings.max_upload_bytes, timeout_seconds=settings.fetch_timeout_seconds
        ),
        allow_private_urls=settings.allow_private_urls,
    )
    return {"ingest": Ingestor(database, models, vectors, limits)}


async def start_worker_runtime(settings: Settings) -> WorkerRuntime:
    database, _secret = await _open_database(settings)
    models = ModelRegistry(settings)
    vectors = await _vector_index(settings, database)
    return WorkerRuntime(database, models, vectors, _job_handlers(settings, database, models, vectors))


async def start_runtime(settings: Settings) -> Runtime:
    database, secret = await _open_database(settings)
    limiter = RateLimiter(
        settings.rate_limit_plans,
        settings.anonymous_rate_limit,
        settings.redis_url or settings.rate_limit_storage,
        settings.redis_timeout_seconds,
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
    chat = ChatEngine(replies, models, settings.token_quota, retriever)
    jobs: JobRunner
    if settings.jobs == "celery":
        from tertulia.jobs.celery_app import CeleryJobs  # Celery is an optional extra (`scale`)

        jobs = CeleryJobs(database, settings)
    else:
        jobs = InlineJobs(
            database,
            _job_handlers(settings, database, models, vectors),
            concurrency=settings.ingest_concurrency,
        )
    recorder = Recorder(
        database, settings.monitoring_flush_seconds, timedelta(days=settings.monitoring_retention_days)
    )
    install_log_capture()
    # Tasks started from here on (jobs resumed below) keep their log lines with this recorder.
    use_recorder(recorder)
    runtime = Runtime(
        settings, database, limiter, secret, models, chat, retriever, vectors, jobs, events, replies, recorder
    )
    await recorder.start()
    await events.start()
    await jobs.start()
    return runtime
