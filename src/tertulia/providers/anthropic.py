"""Claude models through Anthropic's Messages API, streamed as server-sent events."""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from tertulia.providers.base import ChatTurn, Sampling, Usage
from tertulia.providers.remote_http import RemoteChatModel, RemoteEndpoint, RetryPolicy, join_system_turns

PROVIDER = "Anthropic"
API_VERSION = "2023-06-01"
_OVERLOADED = frozenset({"overloaded_error", "rate_limit_error"})
_PROMPT_USAGE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class AnthropicChat(RemoteChatModel):
    """Streams from POST {base_url}/v1/messages (`base_url` is https://api.anthropic.com)."""

    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        client: httpx.AsyncClient,
        context_tokens: int = 200_000,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        super().__init__(model_id, context_tokens)
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._headers = {"anthropic-version": API_VERSION, "accept": "text/event-stream"}
        if api_key:
            self._headers["x-api-key"] = api_key
        self._endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, client, retry)

    async def call_tool(
        self, turns: Sequence[ChatTurn], functions: Sequence[dict[str, Any]]
    ) -> tuple[tuple[str, str] | None, Usage | None]:
        """Native tool use: one whole (non-streamed) message offering `functions` as tools;
        the first `tool_use` block, as the tool's name and its input's JSON text, or None."""
        body = self._body(turns, Sampling(temperature=0.0, max_tokens=512))
        del body["stream"]
        body["tools"] = [
            {
                "name": function["name"],
                "description": function["description"],
                "input_schema": function["parameters"],
            }
            for function in functions
        ]
        body["tool_choice"] = {"type": "auto"}
        headers = {**self._headers, "accept": "application/json"}
        endpoint = self._endpoint
        reply = await endpoint.post_json(self._url, headers, body)
        try:
            reported = reply.get("usage") or {}
            usage = None
            if "input_tokens" in reported:
                prompt = sum(int(reported.get(name) or 0) for name in _PROMPT_USAGE)
                usage = Usage(prompt, int(reported.get("output_tokens") or 0))
            used = next((block for block in reply["content"] if block.get("type") == "tool_use"), None)
            if used is None:
                return None, usage
            return (str(used["name"]), json.dumps(used.get("input") or {})), usage
        except (AttributeError, TypeError, KeyError, ValueError):
            raise endpoint.malformed("a reply that is not a message") from None

    def _body(self, turns: Sequence[ChatTurn], sampling: Sampling) -> dict[str, Any]:
        system, conversation = join_system_turns(turns)
        body: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": sampling.max_tokens,
            "messages": [{"role": turn.role, "content": turn.content} for turn in conversation],
            "stream": True,
            "temperature": min(sampling.temperature, 1.0),  # Anthropic's range is 0..1
        }
        if system:
            body["system"] = system
        # Newer Claude models refuse temperature and top_p together: top_p is sent only
        # when it actually narrows the choice.
        if sampling.top_p < 1.0:
            body["top_p"] = sampling.top_p
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k
        if sampling.stop:
            body["stop_sequences"] = list(sampling.stop)
        return body

    async def stream(self, turns: Sequence[ChatTurn], sampling: Sampling) -> AsyncIterator[str | Usage]:
        """Pieces of the reply, then the `Usage` Anthropic reported."""
        endpoint = self._endpoint
        tally = _UsageTally()
        finished = False
        events = endpoint.stream_events(self._url, self._headers, self._body(turns, sampling))
        async with aclosing(events):
            async for event in events:
                data = endpoint.parse_json(event.data)
                kind = data.get("type") if isinstance(data, dict) else None
                if kind == "message_stop":
                    finished = True
                    break
                if kind == "error":
                    error = data.get("error")
                    overloaded = isinstance(error, dict) and error.get("type") in _OVERLOADED
                    raise endpoint.failed_mid_reply(data, overloaded=overloaded)
                piece = _read_event(endpoint, kind, data, tally)
                if piece:
                    yield piece
        if not finished:
            raise endpoint.malformed("the stream ended before message_stop")
        if tally.seen:
            yield Usage(tally.prompt_tokens, tally.completion_tokens)


class _UsageTally:
    """Anthropic reports input tokens in message_start and a running output count in
    message_delta; prompt tokens include those written to and read from the prompt cache."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.seen = False

    def update(self, usage: dict[str, Any]) -> None:
        if usage.get("input_tokens") is not None:
            self.prompt_tokens = sum(int(usage.get(key) or 0) for key in _PROMPT_USAGE)
        if usage.get("output_tokens") is not None:
            self.completion_tokens = int(usage["output_tokens"])
        self.seen = True


def _read_event(endpoint: RemoteEndpoint, kind: Any, data: Any, tally: _UsageTally) -> str | None:
    """The text an event carries, if any; usage is noted on the way. Unknown events (ping,
    content_block_start/stop, new kinds Anthropic may add) carry nothing for us."""
    try:
        if kind == "message_start":
            tally.update(data["message"]["usage"])
        elif kind == "message_delta" and data.get("usage"):
            tally.update(data["usage"])
        elif kind == "content_block_delta" and data["delta"]["type"] == "text_delta":
            text = data["delta"]["text"]
            if not isinstance(text, str):
                raise TypeError(text)
            return text
        elif kind is None:
            raise TypeError(data)
    except (AttributeError, TypeError, KeyError, ValueError):
        raise endpoint.malformed(f"an event that does not fit Anthropic's {kind or 'stream'}") from None
    return None


__all__ = ["AnthropicChat"]
