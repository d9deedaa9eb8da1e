"""Query vectors kept for a while, so a question asked again is not embedded again.

A chat widget hears the same few questions all day; each costs an embedding call before
retrieval can start (a remote provider's round trip and price, or the local model's CPU,
which replies need). The cache is per process in memory on the embedded default, and shared
by every process through Redis when TERTULIA_REDIS_URL is set. bench/scale.py measures what
a hit saves.

Entries are scoped to the account and the embedding model: one account never
gets another's vectors, nor learns from a faster answer what another asked. A Redis that is
away makes every lookup a miss, never a failure.
"""

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from tertulia.providers.base import Embedder

log = logging.getLogger("tertulia.query_cache")

KEY_PREFIX = "tertulia:query-vector:"


class QueryVectors(Protocol):
    async def get(self, key: str) -> list[float] | None: ...

    async def put(self, key: str, vector: Sequence[float]) -> None: ...

    async def close(self) -> None: ...


class MemoryQueryVectors:
    """The most recently used `size` vectors of this process, each for `ttl_seconds`."""

    def __init__(self, size: int, ttl_seconds: float) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, list[float]]] = OrderedDict()

    async def get(self, key: str) -> list[float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, vector = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return list(vector)

    async def put(self, key: str, vector: Sequence[float]) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, list(vector))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        self._entries.clear()


class RedisQueryVectors:
    """Vectors as float64 bytes (exactly what was embedded) under an expiring key, shared by
    every process."""

    def __init__(self, url: str, timeout_seconds: float, ttl_seconds: float) -> None:
        from redis.asyncio import Redis

        from tertulia.core.ratelimit import redis_options

        self._redis = Redis.from_url(url, **redis_options(timeout_seconds))
        self._ttl = max(1, round(ttl_seconds))

    async def get(self, key: str) -> list[float] | None:
        from redis.exceptions import RedisError

        try:
            data = await self._redis.get(KEY_PREFIX + key)
        except RedisError as error:
            log.debug("query vector cache unreachable (%s): embedding instead", error)
            return None
        if data is None or len(data) % 8:
            return None
        return np.frombuffer(data, dtype=np.float64).tolist()

    async def put(self, key: str, vector: Sequence[float]) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.set(
                KEY_PREFIX + key, np.asarray(vector, dtype=np.float64).tobytes(), ex=self._ttl
            )
        except RedisError as error:
            log.debug("query vector not cached (%s)", error)

    async def close(self) -> None:
        await self._redis.aclose()


def query_vectors(
    redis_url: str | None, timeout_seconds: float, ttl_seconds: float, size: int
) -> QueryVectors | None:
    """The cache the settings ask for; None when it is turned off (a TTL of 0)."""
    if ttl_seconds <= 0:
        return None
    if redis_url:
        return RedisQueryVectors(redis_url, timeout_seconds, ttl_seconds)
    return MemoryQueryVectors(size, ttl_seconds)


class CachedQueries:
    """`embedder` for one account, looking a single query up in `cache` before embedding it.
    Passages (ingestion) and batches go straight to the embedder."""

    def __init__(self, embedder: Embedder, cache: QueryVectors, account_id: str) -> None:
        self._embedder = embedder
        self._cache = cache
        # (Not the vector size: a remote model's is unknown until it has embedded once.)
        self._scope = "\0".join((account_id, type(embedder).__qualname__, embedder.model_id))

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    @property
    def max_input_tokens(self) -> int:
        return self._embedder.max_input_tokens

    @property
    def relevance_floor(self) -> float:
        return self._embedder.relevance_floor

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return await self._embedder.count_tokens(texts)

    async def embed(self, texts: Sequence[str], purpose: Literal["query", "passage"]) -> list[list[float]]:
        if purpose != "query" or len(texts) != 1:
            return await self._embedder.embed(texts, purpose)
        key = hashlib.sha256(f"{self._scope}\0{texts[0]}".encode()).hexdigest()
        cached = await self._cache.get(key)
        if cached is not None:
            return [cached]
        vectors = await self._embedder.embed(texts, purpose)
        await self._cache.put(key, vectors[0])
        return vectors
