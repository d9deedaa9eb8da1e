"""What a running server holds once: settings, database, rate limiter, signing secret,
models, the chat engine, the knowledge index and the job runner."""

import time
from dataclasses import dataclass, field

from tertulia import __version__
from tertulia.core.accounts import signing_secret
from tertulia.core.chat import ChatEngine
from tertulia.core.knowledge.fetching import FetchLimits
from tertulia.core.knowledge.ingest import IngestLimits, Ingestor
from tertulia.core.knowledge.retrieval import Retriever
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.core.ratelimit import RateLimiter
from tertulia.jobs import InlineJobs, JobRunner
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
    version: str = __version__
    started_at: float = field(default_factory=time.monotonic)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def close(self) -> None:
        await self.jobs.stop()
        self.vectors.close()
        await self.models.close()
        await self.database.dispose()


async def start_runtime(settings: Settings) -> Runtime:
    database = Database(settings.database_url)
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    async with database.session() as session:
        secret = await signing_secret(session, configured)
    limiter = RateLimiter(
        settings.rate_limit_plans, settings.anonymous_rate_limit, settings.rate_limit_storage
    )
    seal_with(database.engine, secret)
    models = ModelRegistry(settings)
    vectors = VectorIndex(
        ChromaStore(
            path=settings.chroma_folder(),
            url=settings.chroma_url,
            token=settings.chroma_token.get_secret_value() if settings.chroma_token else None,
            timeout_seconds=settings.chroma_timeout_seconds,
        ),
        pgvector=await pgvector.present(database),
    )
    async with database.session() as session:
        await vectors.sweep(session)
    retriever = Retriever(database, models, vectors)
    chat = ChatEngine(database, models, settings.token_quota, retriever)
    limits = IngestLimits(
        max_bytes=settings.max_upload_bytes,
        max_unpacked_bytes=settings.max_unpacked_bytes,
        fetch=FetchLimits(
            max_bytes=settings.max_upload_bytes, timeout_seconds=settings.fetch_timeout_seconds
        ),
        allow_private_urls=settings.allow_private_urls,
    )
    jobs = InlineJobs(
        database,
        {"ingest": Ingestor(database, models, vectors, limits)},
        concurrency=settings.ingest_concurrency,
    )
    runtime = Runtime(settings, database, limiter, secret, models, chat, retriever, vectors, jobs)
    await jobs.start()
    return runtime
