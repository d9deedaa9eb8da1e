"""Chat and embedding models behind an OpenAI-compatible HTTP API: OpenAI itself, vLLM,
Ollama, the llama.cpp server, llama-cpp-python's server and many more."""

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Literal

import httpx

from tertulia.providers.base import ChatTurn, Sampling, Usage
from tertulia.providers.remote_http import RemoteChatModel, RemoteEmbedder, RemoteEndpoint, RetryPolicy

PROVIDER = "OpenAI-compatible server"
_EMBED_BATCH = 128  # inputs per request; OpenAI takes up to 2048, small servers fewer
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def _headers(api_key: str | None, accept: str) -> dict[str, str]:
    headers = {"Accept": accept}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class OpenAICompatibleChat(RemoteChatModel):
    """Streams from POST {base_url}/chat/completions; `base_url` ends in `/v1` for most servers."""

    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        client: httpx.AsyncClient,
        context_tokens: int = 8192,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        super().__init__(model_id, context_tokens)
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = _headers(api_key, "text/event-stream")
        self._json_headers = _headers(api_key, "application/json")
        self._endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, client, retry)

    async def call_tool(
        self, turns: Sequence[ChatTurn], functions: Sequence[dict[str, Any]]
    ) -> tuple[tuple[str, str] | None, Usage | None]:
        """Native tool calling: one whole (non-streamed) reply to `turns` offering
        `functions` ({name, description, parameters}); the first call the model made, as its
        name and its arguments' JSON text, or None when it answered in words instead."""
        body = {
            "model": self.model_id,
            "messages": [{"role": turn.role, "content": turn.content} for turn in turns],
            "tools": [{"type": "function", "function": dict(function)} for function in functions],
            "tool_choice": "auto",
            "temperature": 0,
        }
        endpoint = self._endpoint
        reply = await endpoint.post_json(self._url, self._json_headers, body)
        try:
            message = reply["choices"][0]["message"]
            calls = message.get("tool_calls") or []
            reported = reply.get("usage")
            usage = None
            if reported:
                usage = Usage(int(reported["prompt_tokens"]), int(reported["completion_tokens"]))
            if not calls:
                return None, usage
            function = calls[0]["function"]
            return (str(function["name"]), str(function.get("arguments") or "{}")), usage
        except (AttributeError, TypeError, KeyError, IndexError, ValueError):
            raise endpoint.malformed("a reply that is not a chat.completion") from None

    def _body(self, turns: Sequence[ChatTurn], sampling: Sampling) -> dict[str, Any]:
        # top_k is not part of OpenAI's API (OpenAI itself rejects it), so it is not sent.
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": turn.role, "content": turn.content} for turn in turns],
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        return body

    async def stream(self, turns: Sequence[ChatTurn], sampling: Sampling) -> AsyncIterator[str | Usage]:
        """Pieces of the reply, then the provider's `Usage` when it reported one."""
        endpoint = self._endpoint
        usage: Usage | None = None
        finished = False
        events = endpoint.stream_events(self._url, self._headers, self._body(turns, sampling))
        async with aclosing(events):
            async for event in events:
                if event.data.strip() == "[DONE]":
                    finished = True
                    break
                chunk = endpoint.parse_json(event.data)
                if isinstance(chunk, dict) and "error" in chunk:  # vLLM, llama.cpp: an error mid-stream
                    raise endpoint.failed_mid_reply(chunk)
                pieces, usage = _read_chunk(endpoint, chunk, usage)
                for piece in pieces:
                    yield piece
        if not finished:
            raise endpoint.malformed("the stream ended before its closing [DONE]")
        if usage is not None:
            yield usage


def _read_chunk(endpoint: RemoteEndpoint, chunk: Any, usage: Usage | None) -> tuple[list[str], Usage | None]:
    try:
        deltas = [choice.get("delta") or {} for choice in chunk.get("choices") or ()]
        pieces = [text for delta in deltas if (text := delta.get("content"))]
        reported = chunk.get("usage")
        if reported:
            usage = Usage(int(reported["prompt_tokens"]), int(reported["completion_tokens"]))
    except (AttributeError, TypeError, KeyError, ValueError):
        raise endpoint.malformed("a chunk that is not a chat.completion.chunk") from None
    if not all(isinstance(piece, str) for piece in pieces):
        raise endpoint.malformed("a chunk whose content is not text")
    return pieces, usage


class OpenAICompatibleEmbedder(RemoteEmbedder):
    """Embeds through POST {base_url}/embeddings, in batches."""

    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        client: httpx.AsyncClient,
        dimension: int | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, client, retry)
        super().__init__(endpoint, dimension, KNOWN_DIMENSIONS)
        self._url = base_url.rstrip("/") + "/embeddings"
        self._headers = _headers(api_key, "application/json")

    async def embed(self, texts: Sequence[str], purpose: Literal["query", "passage"]) -> list[list[float]]:
        # The API has no notion of query vs passage: both are embedded alike.
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = list(texts[start : start + _EMBED_BATCH])
            body = {"model": self.model_id, "input": batch, "encoding_format": "float"}
            reply = await self._endpoint.post_json(self._url, self._headers, body)
            try:
                items = sorted(reply["data"], key=lambda item: item["index"])
                found = [[float(value) for value in item["embedding"]] for item in items]
            except (TypeError, KeyError, ValueError):
                raise self._endpoint.malformed("a body that is not a list of embeddings") from None
            vectors.extend(self._checked(found, len(batch)))
        return vectors


class OpenAICompatibleReranker:
    """Re-scores passages through POST {base_url}/rerank, the request most rerank servers
    share (llama.cpp's server, vLLM, Infinity, Jina and Cohere-style APIs): `{model, query,
    documents}` in, `{results: [{index, relevance_score}]}` out."""

    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        client: httpx.AsyncClient,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, client, retry)
        self._url = base_url.rstrip("/") + "/rerank"
        self._headers = _headers(api_key, "application/json")

    @property
    def model_id(self) -> str:
        return self._endpoint.model_id

    async def rerank(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        body = {"model": self.model_id, "query": query, "documents": list(passages), "top_n": len(passages)}
        reply = await self._endpoint.post_json(self._url, self._headers, body)
        scores = [0.0] * len(passages)
        try:
            seen = set()
            for item in reply["results"]:
                index = int(item["index"])
                if not 0 <= index < len(passages) or index in seen:
                    raise ValueError(index)
                seen.add(index)
                scores[index] = float(item["relevance_score"])
        except (TypeError, KeyError, ValueError):
            raise self._endpoint.malformed("a body that is not a list of rerank results") from None
        if len(seen) != len(passages):
            raise self._endpoint.malformed(f"{len(seen)} scores for {len(passages)} passages")
        return scores


__all__ = ["OpenAICompatibleChat", "OpenAICompatibleEmbedder", "OpenAICompatibleReranker"]
