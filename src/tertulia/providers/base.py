"""The protocols every model backend implements, and the values they exchange."""

from collections.abc import AsyncIterator, Sequence
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

    def stream(self, turns: Sequence[ChatTurn], sampling: Sampling) -> AsyncIterator[str]:
        """Yields pieces of the reply. Closing the iterator stops generation."""
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


class Reranker(Protocol):
    @property
    def model_id(self) -> str: ...

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, higher is better."""
        ...
