"""Request rate limits per account plan (and per address before sign-in), on `limits`."""

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
        # Every rule is counted; the tightest one is what the caller is told about.
        states = []
        for rule in rules:
            allowed = await self._limiter.hit(rule, *identity)
            stats = await self._limiter.get_window_stats(rule, *identity)
            state = RateLimitState(rule.amount, stats.remaining, int(stats.reset_time))
            if not allowed:
                raise RateLimited(f"rate limit of {rule} exceeded", state)
            states.append(state)
        return min(states, key=lambda state: state.remaining)
