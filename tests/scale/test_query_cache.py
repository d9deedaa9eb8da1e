"""The query-vector cache in Redis: shared by every API process, and never a failure when
Redis is away (a lookup is then a miss and the question is embedded)."""

import asyncio

import pytest

from tertulia.core.knowledge.query_cache import RedisQueryVectors
from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import sign_up
from tests.faces.chatagent.test_documents import search
from tests.faces.chatagent.test_query_cache import QUESTION, base_embedded_remotely, times_embedded
from tests.providers.standins import StandIn
from tests.scale.conftest import RedisServer

pytestmark = pytest.mark.scale


async def test_two_processes_sharing_redis_embed_a_question_once(
    make_client: AppFactory, redis_url: str, standin: StandIn
) -> None:
    first = await make_client(redis_url=redis_url)
    second = await make_client(redis_url=redis_url)
    alice = await sign_up(first, "alice")
    base_id = await base_embedded_remotely(first, alice, standin)

    asked = await search(first, alice, base_id, QUESTION, mode="vector")
    again = await search(second, alice, base_id, QUESTION, mode="vector")

    assert times_embedded(standin, QUESTION) == 1
    assert again == asked


async def test_a_cache_whose_redis_is_away_misses_and_heals(redis_server: RedisServer) -> None:
    cache = RedisQueryVectors(redis_server.url, timeout_seconds=0.5, ttl_seconds=60)
    try:
        await cache.put("k", [0.25, -1.0, 3.5])
        assert await cache.get("k") == [0.25, -1.0, 3.5]  # exactly what was put

        redis_server.stop()
        assert await cache.get("k") is None
        await cache.put("k2", [1.0])  # does not raise

        redis_server.start()
        # The first command after the restart may meet a dead pooled connection (a miss);
        # the pool reconnects by itself.
        for _ in range(50):
            await cache.put("k3", [2.0])
            if await cache.get("k3") == [2.0]:
                break
            await asyncio.sleep(0.2)
        assert await cache.get("k3") == [2.0]
    finally:
        await cache.close()
