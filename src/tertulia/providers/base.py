"""The protocols every model backend implements, and the values they exchange."""

import io
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatTurn:
    role: Role
    content: str


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 40
    max_tokens: int = 512
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credentials:
    """How to reach a remote provider; None fields fall back to the server's settings."""

    api_key: str | None = None
    base_url: str | None = None

    def __repr__(self) -> str:  # never print a key into a log
        return f"Credentials(api_key={'***' if self.api_key else None}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatModel(Protocol):
    """A chat model: streams a reply token by token and counts tokens its own way."""

    @property
    def model_id(self) -> str: ...

    @property
    def context_tokens(self) -> int:
        """How many tokens the prompt and the reply may hold together."""
        ...

    def stream(self, turns: Sequence[ChatTurn], sampling: Sampling) -> AsyncIterator[str | Usage]:
        """Yields pieces of the reply. Closing the iterator stops generation.

        As its very last item it may yield a `Usage` with the prompt and completion tokens
        the provider reported (remote providers do); a model that yields none leaves the
        caller to count tokens itself.
        """
        ...

    async def count_tokens(self, text: str) -> int: ...

    async def count_prompt_tokens(self, turns: Sequence[ChatTurn]) -> int:
        """Tokens the model reads for these turns, its chat template included."""
        ...


class Embedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(
        self, texts: Sequence[str], purpose: Literal["query", "passage"]
    ) -> list[list[float]]: ...

    @property
    def max_input_tokens(self) -> int:
        """The longest text it embeds whole; chunks are cut to fit."""
        ...

    @property
    def relevance_floor(self) -> float:
        """The query–passage similarity below which a passage is taken as unrelated, as
        measured for this model (0.0 where it is not known)."""
        ...

    async def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens these texts cost to embed (the provider's tokenizer, or an estimate)."""
        ...

    def counter(self) -> Callable[[str], int]:
        """A synchronous token counter for chunking in a worker thread (thread-safe)."""
        ...


class Reranker(Protocol):
    @property
    def model_id(self) -> str: ...

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, higher is better."""
        ...


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None = None  # as the model detected it, or as it was told
    duration: float | None = None  # seconds of audio heard


SPEECH_SAMPLE_RATE = 16_000


def pcm_as_wav(pcm: bytes) -> bytes:
    """Speech audio (16-bit mono PCM at 16 kHz) in a WAV container, which every API accepts."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SPEECH_SAMPLE_RATE)
        writer.writeframes(pcm)
    return out.getvalue()


class Transcriber(Protocol):
    """Speech to text. The audio comes as 16-bit little-endian mono PCM at 16 kHz, what every
    speech model reads; decoding and resampling are the caller's (ffmpeg's) job."""

    @property
    def model_id(self) -> str: ...

    async def transcribe(self, pcm: bytes, language: str | None) -> Transcript: ...

    async def close(self) -> None: ...
