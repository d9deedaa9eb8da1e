"""The local chat model: a packaged GGUF run in-process with llama-cpp-python.

Loaded once per process, lazily and off the event loop. A llama.cpp context is not
thread-safe, so each model owns one worker thread that loads it and generates one reply at
a time; other conversations wait their turn asynchronously, and the event loop (health
checks, other requests) never waits on the model.
"""

import asyncio
import functools
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tertulia.core.errors import Unavailable
from tertulia.providers.base import ChatTurn, Sampling
from tertulia.providers.local_models import LOCAL_MODELS, LocalModel, model_file

_DONE = object()
log = logging.getLogger("tertulia.local_llm")


def has_amx() -> bool:
    """Whether this x86 CPU has Intel AMX (Sapphire Rapids and later)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " amx_int8" in line for line in cpuinfo)
    except OSError:
        return False


_params_lock = threading.Lock()


@contextmanager
def without_weight_repacking(wanted: bool) -> Iterator[None]:
    """Loads models, inside the block, with llama.cpp's "extra buffer types" turned off when
    `wanted`. On a CPU with AMX, a llama.cpp compiled for the machine (pip's default build)
    repacks the weights for AMX, and on some machines (virtual ones among them) the first
    forward pass then crashes the whole process with a segmentation fault (llama.cpp
    issue 20824). Turned off, the weights stay as they are in the file; the model answers
    the same. llama-cpp-python's Llama() does not take the setting, so its default
    parameters are amended while it loads (under a lock: several models may load at once)."""
    if not wanted:
        yield
        return
    import llama_cpp.llama_cpp as bindings

    with _params_lock:
        defaults = bindings.llama_model_default_params

        def amended() -> Any:
            params = defaults()
            params.use_extra_bufts = False
            return params

        bindings.llama_model_default_params = amended
        try:
            yield
        finally:
            bindings.llama_model_default_params = defaults


class LocalChatModel:
    def __init__(self, model: LocalModel, cache_dir: Path, threads: int, context_tokens: int) -> None:
        self._model = model
        self._cache_dir = cache_dir
        self._threads = threads
        self._context_tokens = context_tokens
        self._llama: Any = None
        self._formatter: Any = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{model.model_id}")

    @property
    def model_id(self) -> str:
        return self._model.model_id

    async def _loaded(self) -> Any:
        if self._llama is None:
            await asyncio.get_running_loop().run_in_executor(self._worker, self._load)
        return self._llama

    def _load(self) -> None:
        if self._llama is not None:  # loaded by an earlier job in this worker
            return
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as error:
            raise Unavailable(
                "the local model runtime is not installed; install it with: "
                "pip install 'llama-cpp-python>=0.3.30,<0.4'"
            ) from error
        path = model_file(self._model, self._cache_dir)
        amx = has_amx()
        if amx:
            log.info("this CPU has AMX: loading %s without weight repacking", self.model_id)
        with without_weight_repacking(amx):
            llama = Llama(
                model_path=str(path),
                n_ctx=self._context_tokens,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                verbose=False,
            )
        template = llama.metadata.get("tokenizer.chat_template")
        if template:
            eos = llama._model.token_get_text(llama.token_eos())
            bos = llama._model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._llama = llama

    async def count_tokens(self, text: str) -> int:
        llama = await self._loaded()
        return len(llama.tokenize(text.encode(), add_bos=False, special=False))

    async def count_prompt_tokens(self, turns: Sequence[ChatTurn]) -> int:
        llama = await self._loaded()
        messages = [{"role": turn.role, "content": turn.content} for turn in turns]
        if self._formatter is None:
            text = "\n".join(turn.content for turn in turns)
        else:
            text = self._formatter(messages=messages).prompt
        return len(llama.tokenize(text.encode(), add_bos=False, special=True))

    @property
    def context_tokens(self) -> int:
        return self._context_tokens

    async def structured(self, turns: Sequence[ChatTurn], schema: dict[str, Any], max_tokens: int) -> str:
        """A reply that is JSON matching `schema`: a grammar made from the schema allows only
        the tokens that keep it so (measured: a small model's tool calls are then always
        parseable, though their arguments still need checking)."""
        llama = await self._loaded()
        grammar = self._grammar(json.dumps(schema, sort_keys=True))
        messages = [{"role": turn.role, "content": turn.content} for turn in turns]

        def complete() -> str:
            reply = llama.create_chat_completion(
                messages=messages, temperature=0.0, max_tokens=max_tokens, grammar=grammar
            )
            return str(reply["choices"][0]["message"]["content"] or "")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, complete)
        except Exception as error:
            raise Unavailable(f"the local model failed: {error}") from error

    @functools.lru_cache(maxsize=32)  # noqa: B019 - one model per process, kept for its life
    def _grammar(self, schema: str) -> Any:
        from llama_cpp import LlamaGrammar

        return LlamaGrammar.from_json_schema(schema, verbose=False)

    async def stream(self, turns: Sequence[ChatTurn], sampling: Sampling) -> AsyncIterator[str]:
        llama = await self._loaded()
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        messages = [{"role": turn.role, "content": turn.content} for turn in turns]

        def generate() -> None:
            if stop.is_set():  # the reader left while this job was queued
                return
            try:
                chunks = llama.create_chat_completion(
                    messages=messages,
                    stream=True,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    top_k=sampling.top_k,
                    max_tokens=sampling.max_tokens,
                    stop=list(sampling.stop) or None,
                )
                for chunk in chunks:
                    if stop.is_set():  # the reader went away: stop spending the CPU
                        break
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        loop.call_soon_threadsafe(pieces.put_nowait, text)
                loop.call_soon_threadsafe(pieces.put_nowait, _DONE)
            except Exception as error:  # handed to the reader, who re-raises it
                loop.call_soon_threadsafe(pieces.put_nowait, error)

        # Queued behind any reply being generated; a reader that leaves while queued
        # costs nothing, since the job sees `stop` and returns at once.
        job = loop.run_in_executor(self._worker, generate)
        try:
            while True:
                piece = await pieces.get()
                if piece is _DONE:
                    break
                if isinstance(piece, Exception):
                    raise Unavailable(f"the local model failed: {piece}") from piece
                yield str(piece)
        finally:
            stop.set()
            await asyncio.shield(job)


_instances: dict[tuple[str, Path, int, int], LocalChatModel] = {}
_instances_lock = threading.Lock()


def local_chat_model(model_id: str, cache_dir: Path, threads: int, context_tokens: int) -> LocalChatModel:
    """The process's one instance of a local model (weights are loaded once per process)."""
    model = LOCAL_MODELS.get(model_id)
    if model is None:
        raise Unavailable(
            f"unknown local model {model_id!r}", {"model": model_id, "available": sorted(LOCAL_MODELS)}
        )
    key = (model_id, cache_dir, threads, context_tokens)
    with _instances_lock:
        if key not in _instances:
            _instances[key] = LocalChatModel(model, cache_dir, threads, context_tokens)
        return _instances[key]
