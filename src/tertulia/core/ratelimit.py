"""Request rate limits per account plan (and per address before sign-in), on `limits`."""

import math
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from tertulia.core.errors import Invalid, RateLimited, RateLimitState, Unavailable


def redis_options(timeout_seconds: float) -> dict[str, Any]:
    """redis-py options that keep a request from waiting on a Redis that is gone or stuck:
    short timeouts and no retries (redis-py retries with backoff by default), so an outage is
    an error within `timeout_seconds`; the pool reconnects by itself once Redis is back."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
    }


class RateLimiter:
    """One per process; its storage (memory, or Redis shared by every process) is the truth."""

    def __init__(
        self,
        plans: dict[str, str],
        anonymous: str,
        storage_uri: str,
        timeout_seconds: float = 1.0,
        visitor: str = "20/minute;300/hour",
    ) -> None:
        self._plans = {name: parse_many(rule) for name, rule in plans.items()}
        self._anonymous = parse_many(anonymous)
        self._visitor = parse_many(visitor)
        options: dict[str, Any] = {"wrap_exceptions": True}
        self._pool: Any = None
        if storage_uri.startswith(("redis://", "rediss://", "unix://")):
            from redis.asyncio import ConnectionPool

            # Our own pool, so that closing the server closes its connections.
            self._pool = ConnectionPool.from_url(storage_uri, **redis_options(timeout_seconds))
            options |= {"implementation": "redispy", "connection_pool": self._pool}
            self._store = "the rate limit store (Redis)"
        else:
            self._store = "the rate limit store"
        self._limiter = MovingWindowRateLimiter(storage_from_string(f"async+{storage_uri}", **options))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    def known_plan(self, plan: str) -> bool:
        return plan in self._plans

    async def hit_account(self, account_id: str, plan: str) -> RateLimitState:
        rules = self._plans.get(plan)
        if rules is None:
            raise Invalid(f"account plan {plan!r} has no rate limit configured")
        return await self._hit(rules, "account", account_id)

    async def hit_address(self, address: str) -> RateLimitState:
        return await self._hit(self._anonymous, "address", address)

    async def hit_visitor(self, bot_id: str, visitor_id: str) -> RateLimitState:
        """A web widget's visitor (each also counts against the account's plan)."""
        return await self._hit(self._visitor, "visitor", bot_id, visitor_id)

    async def _hit(self, rules: list[RateLimitItem], *identity: str) -> RateLimitState:
        try:
            return await self._count(rules, *identity)
        except StorageError as error:
            # Refusing is the only safe answer: admitting would let a limit be ignored by
            # every process at once while the store is away.
            raise Unavailable(
                f"{self._store} is not reachable; try again shortly", subsystem="store"
            ) from error

    async def _count(self, rules: list[RateLimitItem], *identity: str) -> RateLimitState:
        # A refused request counts against no rule; an admitted one against every rule,
        # and the tightest is what the caller is told about.
        for rule in rules:
            if not await self._limiter.test(rule, *identity):
                raise RateLimited(f"rate limit of {rule} exceeded", await self._state(rule, identity))
        states = []
        for rule in rules:
            await self._limiter.hit(rule, *identity)
            states.append(await self._state(rule, identity))
        return min(states, key=lambda state: state.remaining)

    async def _state(self, rule: RateLimitItem, identity: tuple[str, ...]) -> RateLimitState:
        stats = await self._limiter.get_window_stats(rule, *identity)
        # Rounded up, so a client that waits until `reset` is never early.
        return RateLimitState(rule.amount, stats.remaining, math.ceil(stats.reset_time))
