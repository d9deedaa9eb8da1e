"""Request rate limits per account plan (and per address before sign-in), on `limits`."""

import math

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from tertulia.core.errors import Invalid, RateLimited, RateLimitState


class RateLimiter:
    """One per process; its storage (memory now, Redis when scaled out) is the shared truth."""

    def __init__(self, plans: dict[str, str], anonymous: str, storage_uri: str) -> None:
        self._plans = {name: parse_many(rule) for name, rule in plans.items()}
        self._anonymous = parse_many(anonymous)
        self._limiter = MovingWindowRateLimiter(storage_from_string(f"async+{storage_uri}"))

    def known_plan(self, plan: str) -> bool:
        return plan in self._plans

    async def hit_account(self, account_id: str, plan: str) -> RateLimitState:
        rules = self._plans.get(plan)
        if rules is None:
            raise Invalid(f"account plan {plan!r} has no rate limit configured")
        return await self._hit(rules, "account", account_id)

    async def hit_address(self, address: str) -> RateLimitState:
        return await self._hit(self._anonymous, "address", address)

    async def _hit(self, rules: list[RateLimitItem], *identity: str) -> RateLimitState:
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
