"""Rate limits per account plan and per address, counted in memory storage."""

import time

import pytest

from tertulia.core.errors import Invalid, RateLimited
from tertulia.core.ratelimit import RateLimiter


def limiter(plans: dict[str, str], anonymous: str = "2/minute") -> RateLimiter:
    return RateLimiter(plans, anonymous, "memory://")


async def test_a_plan_allows_its_hits_counting_down_then_refuses() -> None:
    limits = limiter({"standard": "3/minute"})

    states = [await limits.hit_account("usr_a", "standard") for _ in range(3)]
    with pytest.raises(RateLimited) as refused:
        await limits.hit_account("usr_a", "standard")

    assert [(state.limit, state.remaining) for state in states] == [(3, 2), (3, 1), (3, 0)]
    assert refused.value.limit.limit == 3
    assert refused.value.limit.remaining == 0
    assert time.time() < refused.value.limit.reset <= time.time() + 61
    assert refused.value.details == {"limit": 3, "reset": refused.value.limit.reset}


async def test_a_refused_hit_does_not_extend_the_wait() -> None:
    limits = limiter({"standard": "1/minute"})
    await limits.hit_account("usr_a", "standard")
    with pytest.raises(RateLimited) as first:
        await limits.hit_account("usr_a", "standard")
    with pytest.raises(RateLimited) as second:
        await limits.hit_account("usr_a", "standard")
    assert second.value.limit.reset == first.value.limit.reset


async def test_each_account_is_counted_on_its_own() -> None:
    limits = limiter({"standard": "2/minute"})
    await limits.hit_account("usr_a", "standard")
    await limits.hit_account("usr_a", "standard")
    with pytest.raises(RateLimited):
        await limits.hit_account("usr_a", "standard")

    other = await limits.hit_account("usr_b", "standard")
    assert (other.limit, other.remaining) == (2, 1)


async def test_each_plan_has_its_own_allowance() -> None:
    limits = limiter({"standard": "1/minute", "premium": "5/minute"})
    assert (await limits.hit_account("usr_a", "standard")).remaining == 0
    premium = await limits.hit_account("usr_b", "premium")
    assert (premium.limit, premium.remaining) == (5, 4)
    assert limits.known_plan("premium")
    assert not limits.known_plan("gold")


async def test_with_several_rules_the_tightest_is_reported() -> None:
    limits = limiter({"standard": "5/minute;3/hour"})

    first = await limits.hit_account("usr_a", "standard")
    assert (first.limit, first.remaining) == (3, 2)
    await limits.hit_account("usr_a", "standard")
    await limits.hit_account("usr_a", "standard")
    with pytest.raises(RateLimited) as refused:
        await limits.hit_account("usr_a", "standard")
    assert (refused.value.limit.limit, refused.value.limit.remaining) == (3, 0)
    assert refused.value.limit.reset > time.time() + 60  # the hour's window, not the minute's


async def test_refused_requests_do_not_use_up_the_other_rules() -> None:
    limits = limiter({"standard": "5/minute;3/hour"})
    for _ in range(3):
        await limits.hit_account("usr_a", "standard")

    # Only three requests got through, so the minute's rule (5) is never the one to refuse:
    # the client is told about the hour every time, and when it may come back.
    for _ in range(4):
        with pytest.raises(RateLimited) as refused:
            await limits.hit_account("usr_a", "standard")
        assert (refused.value.limit.limit, refused.value.limit.remaining) == (3, 0)
        assert refused.value.limit.reset > time.time() + 60


async def test_a_short_burst_rule_refuses_before_a_longer_one() -> None:
    limits = limiter({"standard": "2/second;5/minute"})
    first = await limits.hit_account("usr_a", "standard")
    assert (first.limit, first.remaining) == (2, 1)
    await limits.hit_account("usr_a", "standard")
    with pytest.raises(RateLimited) as refused:
        await limits.hit_account("usr_a", "standard")
    assert (refused.value.limit.limit, refused.value.limit.remaining) == (2, 0)


async def test_a_plan_without_a_configured_limit_is_invalid() -> None:
    limits = limiter({"standard": "3/minute"})
    with pytest.raises(Invalid):
        await limits.hit_account("usr_a", "gold")


async def test_addresses_use_the_anonymous_rule_apart_from_accounts() -> None:
    limits = limiter({"standard": "100/minute"}, anonymous="2/minute")

    first = await limits.hit_address("203.0.113.7")
    await limits.hit_address("203.0.113.7")
    with pytest.raises(RateLimited) as refused:
        await limits.hit_address("203.0.113.7")
    elsewhere = await limits.hit_address("198.51.100.1")
    # An account whose id looks like the address is not counted together with it.
    account = await limits.hit_account("203.0.113.7", "standard")

    assert (first.limit, first.remaining) == (2, 1)
    assert refused.value.limit.limit == 2
    assert (elsewhere.limit, elsewhere.remaining) == (2, 1)
    assert (account.limit, account.remaining) == (100, 99)
