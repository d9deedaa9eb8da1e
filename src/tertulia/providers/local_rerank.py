"""A cross-encoder the user supplies, run in-process with ONNX Runtime: the local rerank model.

No package on the registries ships cross-encoder weights (shared/reference/offline-models.md),
so none is bundled; a server points TERTULIA_RERANK_MODEL_PATH at a folder holding one in
the layout Hugging Face exports use (`optimum-cli export onnx`, or sentence-transformers'
ONNX backend):

    model.onnx (or onnx/model.onnx)   inputs input_ids, attention_mask[, token_type_ids];
                                      output logits, one per pair (or two: [no, yes])
    tokenizer.json                    the model's fast tokenizer, pairs → [CLS] q [SEP] p [SEP]
    tokenizer_config.json (optional)  model_max_length

Scores are probabilities in [0, 1] (sigmoid of a single logit, softmax of two), as
sentence-transformers' CrossEncoder reports them, so a bot's `min_n` reads the same for
any such model. Inference runs in a worker thread, one batch at a time per model; expect
about 100 pairs/s on two cores for a MiniLM-L6-sized model (measured in offline-models.md).
"""

import json
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from tertulia.core.errors import Unavailable

BATCH = 16
DEFAULT_MAX_TOKENS = 512


def model_file(directory: Path) -> Path | None:
    for candidate in (directory / "model.onnx", directory / "onnx" / "model.onnx"):
        if candidate.is_file():
            return candidate
    return None


def _max_tokens(directory: Path) -> int:
    config = directory / "tokenizer_config.json"
    try:
        value = json.loads(config.read_text()).get("model_max_length", DEFAULT_MAX_TOKENS)
    except (OSError, ValueError):
        return DEFAULT_MAX_TOKENS
    return int(value) if isinstance(value, int) and 0 < value <= 8192 else DEFAULT_MAX_TOKENS


def _probabilities(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True))[:, -1]


class CrossEncoder:
    """A loaded cross-encoder: tokenizer and ONNX session."""

    def __init__(self, directory: Path, threads: int) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as error:
            raise Unavailable(
                "the local rerank model needs ONNX Runtime: install tertulia[rerank]"
            ) from error
        onnx_file = model_file(directory)
        if onnx_file is None or not (directory / "tokenizer.json").is_file():
            raise Unavailable(
                f"{directory} holds no cross-encoder: it needs model.onnx (or onnx/model.onnx) "
                "and tokenizer.json"
            )
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(_max_tokens(directory))
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]") or 0)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(onnx_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # a corrupt or foreign file: say so, never crash a search
            raise Unavailable(f"the rerank model in {directory} cannot be loaded: {error}") from error
        self._inputs = {item.name for item in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise Unavailable(f"the rerank model in {directory} lacks the inputs {sorted(missing)}")
        self._lock = threading.Lock()

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        scores: list[float] = []
        with self._lock:
            for start in range(0, len(passages), BATCH):
                batch = passages[start : start + BATCH]
                encoded = self._tokenizer.encode_batch([(query, passage) for passage in batch])
                feed: dict[str, Any] = {
                    "input_ids": np.array([item.ids for item in encoded], dtype=np.int64),
                    "attention_mask": np.array([item.attention_mask for item in encoded], dtype=np.int64),
                }
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.array([item.type_ids for item in encoded], dtype=np.int64)
                [logits, *_] = self._session.run(None, feed)
                scores.extend(float(value) for value in _probabilities(logits))
        return scores


@lru_cache(maxsize=4)
def _loaded(directory: Path, threads: int) -> CrossEncoder:
    return CrossEncoder(directory, threads)


class LocalReranker:
    def __init__(self, model_id: str, directory: Path, threads: int) -> None:
        self._model_id = model_id
        self._directory = directory
        self._threads = threads

    @property
    def model_id(self) -> str:
        return self._model_id

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []

        def run() -> list[float]:
            return _loaded(self._directory, self._threads).score(query, list(passages))

        return await anyio.to_thread.run_sync(run)
