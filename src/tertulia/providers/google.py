"""Gemini chat and embedding models through Google's Generative Language API (v1beta)."""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Literal

import httpx

from tertulia.core.errors import UpstreamFailed
from tertulia.providers.base import ChatTurn, Sampling, Usage
from tertulia.providers.remote_http import (
    RemoteChatModel,
    RemoteEmbedder,
    RemoteEndpoint,
    RetryPolicy,
    join_system_turns,
)

PROVIDER = "Google Gemini"
_EMBED_BATCH = 100  # the most requests batchEmbedContents takes at once
_OVERLOADED = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})
KNOWN_DIMENSIONS = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
_TASK_TYPES = {"query": "RETRIEVAL_QUERY", "passage": "RETRIEVAL_DOCUMENT"}


def _error_of(body: Any) -> dict[str, Any]:
    """The `error` object of a Gemini error body (sometimes wrapped in a list), or {}."""
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details_of(body: Any) -> list[dict[str, Any]]:
    return [detail for detail in _error_of(body).get("details") or () if isinstance(detail, dict)]


def _refuses_key(status: int, body: Any) -> bool:
    """Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
    if any(detail.get("reason") == "API_KEY_INVALID" for detail in _details_of(body)):
        return True
    return _error_of(body).get("status") in ("UNAUTHENTICATED", "PERMISSION_DENIED")


def _retry_hint(body: Any) -> float | None:
    """Gemini's 429 says how long to wait in a RetryInfo detail ("retryDelay": "31s")."""
    for detail in _details_of(body):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            try:
                return max(0.0, float(str(detail.get("retryDelay", "")).removesuffix("s")))
            except ValueError:
                return None
    return None


def _model_url(base_url: str, model_id: str, method: str) -> str:
    name = model_id.removeprefix("models/")
    return f"{base_url.rstrip('/')}/v1beta/models/{name}:{method}"


def _headers(api_key: str | None, accept: str) -> dict[str, str]:
    headers = {"Accept": accept}
    if api_key:
        headers["x-goog-api-key"] = api_key
    return headers


class GeminiChat(RemoteChatModel):
    """Streams from POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse
    (`base_url` is https://generativelanguage.googleapis.com)."""

    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        client: httpx.AsyncClient,
        context_tokens: int = 1_048_576,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        super().__init__(model_id, context_tokens)
        self._url = _model_url(base_url, model_id, "streamGenerateContent") + "?alt=sse"
        self._whole_url = _model_url(base_url, model_id, "generateContent")
        self._headers = _headers(api_key, "text/event-stream")
        self._json_headers = _headers(api_key, "application/json")
        self._endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, client, retry, _refuses_key, _retry_hint)

    async def call_tool(
        self, turns: Sequence[ChatTurn], functions: Sequence[dict[str, Any]]
    ) -> tuple[tuple[str, str] | None, Usage | None]:
        """Native function calling (generateContent with `functionDeclarations`): the first
        call the model made, as its name and its arguments' JSON text, or None."""
        body = self._body(turns, Sampling(temperature=0.0, max_tokens=256))
        body["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": function["name"].replace("-", "_"),
                        "description": function["description"],
                        "parameters": gemini_schema(function["parameters"]),
                    }
                    for function in functions
                ]
            }
        ]
        body["toolConfig"] = {"functionCallingConfig": {"mode": "AUTO"}}
        endpoint = self._endpoint
        reply = await endpoint.post_json(self._whole_url, self._json_headers, body)
        names = {function["name"].replace("-", "_"): function["name"] for function in functions}
        try:
            parts = reply["candidates"][0]["content"].get("parts") or []
            metadata = reply.get("usageMetadata") or {}
            usage = None
            if "promptTokenCount" in metadata:
                usage = Usage(int(metadata["promptTokenCount"]), int(metadata.get("candidatesTokenCount", 0)))
            call = next((part["functionCall"] for part in parts if "functionCall" in part), None)
            if call is None:
                return None, usage
            name = names.get(str(call["name"]), str(call["name"]))
            return (name, json.dumps(call.get("args") or {})), usage
        except (AttributeError, TypeError, KeyError, IndexError, ValueError):
            raise endpoint.malformed("a reply that is not a GenerateContentResponse") from None

    def _body(self, turns: Sequence[ChatTurn], sampling: Sampling) -> dict[str, Any]:
        system, conversation = join_system_turns(turns)
        config: dict[str, Any] = {
            "temperature": sampling.temperature,
            "topP": sampling.top_p,
            "maxOutputTokens": sampling.max_tokens,
        }
        if sampling.top_k > 0:
            config["topK"] = sampling.top_k
        if sampling.stop:
            config["stopSequences"] = list(sampling.stop)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if turn.role == "assistant" else "user", "parts": [{"text": turn.content}]}
                for turn in conversation
            ],
            "generationConfig": config,
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    async def stream(self, turns: Sequence[ChatTurn], sampling: Sampling) -> AsyncIterator[str | Usage]:
        """Pieces of the reply, then the `Usage` Gemini reported."""
        endpoint = self._endpoint
        usage: Usage | None = None
        finished = False
        events = endpoint.stream_events(self._url, self._headers, self._body(turns, sampling))
        async with aclosing(events):
            async for event in events:
                chunk = endpoint.parse_json(event.data)
                if isinstance(chunk, dict) and "error" in chunk:
                    overloaded = _error_of(chunk).get("status") in _OVERLOADED
                    raise endpoint.failed_mid_reply(chunk, overloaded=overloaded)
                pieces, usage, finish = _read_chunk(endpoint, chunk, usage)
                finished = finished or finish
                for piece in pieces:
                    yield piece
        if not finished:
            raise endpoint.malformed("the stream ended before a candidate's finishReason")
        if usage is not None:
            yield usage


# The JSON Schema keywords Gemini's Schema (an OpenAPI subset) knows; others are refused.
_GEMINI_KEYWORDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum",
})  # fmt: skip


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's JSON Schema as Gemini takes it: upper-case type names, and without the
    keywords it does not know (additionalProperties: the arguments are checked anyway)."""
    converted: dict[str, Any] = {}
    for name, value in schema.items():
        if name not in _GEMINI_KEYWORDS:
            continue
        if name == "type" and isinstance(value, str):
            converted[name] = value.upper()
        elif name == "properties" and isinstance(value, dict):
            converted[name] = {key: gemini_schema(child) for key, child in value.items()}
        elif name == "items" and isinstance(value, dict):
            converted[name] = gemini_schema(value)
        elif name == "anyOf" and isinstance(value, list):
            converted[name] = [gemini_schema(child) for child in value]
        else:
            converted[name] = value
    return converted


def _read_chunk(
    endpoint: RemoteEndpoint, chunk: Any, usage: Usage | None
) -> tuple[list[str], Usage | None, bool]:
    """One GenerateContentResponse: its text, the usage so far, and whether the reply ended."""
    try:
        blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
        candidates = chunk.get("candidates") or []
        if blocked and not candidates:
            raise UpstreamFailed(
                f"{PROVIDER} blocked the prompt for model {endpoint.model_id!r} ({blocked})",
                {"provider": PROVIDER, "model": endpoint.model_id, "reason": blocked},
            )
        pieces: list[str] = []
        finished = False
        for candidate in candidates[:1]:  # one candidate is asked for
            for part in (candidate.get("content") or {}).get("parts") or ():
                if isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                    pieces.append(part["text"])
            finished = bool(candidate.get("finishReason"))
        metadata = chunk.get("usageMetadata")
        if metadata:
            # Thinking models bill their thoughts as output: they count as completion tokens.
            completion = metadata.get("candidatesTokenCount", 0) + metadata.get("thoughtsTokenCount", 0)
            usage = Usage(int(metadata.get("promptTokenCount", 0)), int(completion))
    except (AttributeError, TypeError, KeyError, ValueError):
        raise endpoint.malformed("a chunk that is not a GenerateContentResponse") from None
    return pieces, usage, finished


class GeminiEmbedder(RemoteEmbedder):
    """Embeds through POST {base_url}/v1beta/models/{model}:batchEmbedContents, telling
    queries from passages by task type, and asking for `dimension` numbers when given."""

    max_input_tokens = 2048

    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        client: httpx.AsyncClient,
        dimension: int | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, client, retry, _refuses_key, _retry_hint)
        super().__init__(endpoint, dimension, KNOWN_DIMENSIONS)
        self._asked_dimension = dimension
        self._url = _model_url(base_url, model_id, "batchEmbedContents")
        self._headers = _headers(api_key, "application/json")

    async def embed(self, texts: Sequence[str], purpose: Literal["query", "passage"]) -> list[list[float]]:
        name = "models/" + self.model_id.removeprefix("models/")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = texts[start : start + _EMBED_BATCH]
            requests: list[dict[str, Any]] = [
                {"model": name, "content": {"parts": [{"text": text}]}, "taskType": _TASK_TYPES[purpose]}
                for text in batch
            ]
            if self._asked_dimension:
                for request in requests:
                    request["outputDimensionality"] = self._asked_dimension
            reply = await self._endpoint.post_json(self._url, self._headers, {"requests": requests})
            try:
                found = [[float(value) for value in item["values"]] for item in reply["embeddings"]]
            except (TypeError, KeyError, ValueError):
                raise self._endpoint.malformed("a body that is not a batch of embeddings") from None
            vectors.extend(self._checked(found, len(batch)))
        return vectors


__all__ = ["GeminiChat", "GeminiEmbedder"]
