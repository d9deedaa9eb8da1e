"""What a running server holds once: settings, database, rate limiter, signing secret."""

import time
from dataclasses import dataclass, field

from tertulia import __version__
from tertulia.core.accounts import signing_secret
from tertulia.core.chat import ChatEngine
from tertulia.core.ratelimit import RateLimiter
from tertulia.providers.registry import ModelRegistry
from tertulia.settings import Settings
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
    version: str = __version__
    started_at: float = field(default_factory=time.monotonic)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at


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
    chat = ChatEngine(database, models, settings.token_quota)
    return Runtime(settings, database, limiter, secret, models, chat)
