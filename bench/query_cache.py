"""What the query-vector cache saves: a question's embedding from the model vs from the cache.

    PYTHONPATH=src:. .venv/bin/python bench/query_cache.py [--questions 200] [--redis-url URL]

The --questions first XQuAD (en) questions are embedded, in turn, three ways:
    model    the server's default local embedder, as a first ask does (the baseline);
    memory   a hit in the in-process cache (the embedded default);
    redis    a hit in the Redis cache shared by every API process (--redis-url, a database
             index of its own that is flushed; skipped when Redis does not answer).
Each round asks every question once each way, the ways in turn, so that a shared machine's
drift falls on all three. A remote embedding provider costs a network round trip (tens to
hundreds of milliseconds) and money per call instead of the local model's CPU; neither is
measured here. Nothing is asserted: read the ratios.
"""

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.scale import percentile, progress

from tertulia.core.knowledge.query_cache import CachedQueries, MemoryQueryVectors, RedisQueryVectors
from tertulia.providers.registry import ModelRegistry
from tertulia.settings import Settings

XQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata" / "xquad" / "beir_en"


def questions(count: int) -> list[str]:
    lines = (XQUAD / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


async def redis_cache(url: str) -> RedisQueryVectors | None:
    cache = RedisQueryVectors(url, timeout_seconds=2.0, ttl_seconds=3600)
    try:
        await cache._redis.flushdb()
    except Exception as error:
        print(f"redis: not measured ({error})")
        await cache.close()
        return None
    return cache


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    asked = questions(args.questions)
    model = ModelRegistry(Settings()).embedder(None)
    await model.embed(["warm up"], "query")
    ways = {"model": None, "memory": MemoryQueryVectors(len(asked) * 2, 3600)}
    shared = await redis_cache(args.redis_url)
    if shared is not None:
        ways["redis"] = shared
    embedders = {
        name: model if cache is None else CachedQueries(model, cache, "bench-account")
        for name, cache in ways.items()
    }
    for name, embedder in embedders.items():  # fill the caches: every timed ask below is a hit
        if name != "model":
            for question in asked:
                await embedder.embed([question], "query")

    timings: dict[str, list[float]] = {name: [] for name in embedders}
    with progress() as bar:
        task = bar.add_task("questions", total=args.rounds * len(asked))
        for _ in range(args.rounds):
            for question in asked:
                for name, embedder in embedders.items():
                    started = time.perf_counter()
                    await embedder.embed([question], "query")
                    timings[name].append(time.perf_counter() - started)
                bar.advance(task)

    base = percentile(timings["model"], 0.5)
    print(f"query embedding, {len(asked)} XQuAD questions x {args.rounds} rounds, model {model.model_id}")
    print(f"{'way':8} {'p50 ms':>9} {'p95 ms':>9} {'p50 vs model':>13}")
    for name, values in timings.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        print(f"{name:8} {p50 * 1000:9.3f} {p95 * 1000:9.3f} {p50 / base:12.4f}x")
    for cache in ways.values():
        if cache is not None:
            await cache.close()


if __name__ == "__main__":
    asyncio.run(main())
