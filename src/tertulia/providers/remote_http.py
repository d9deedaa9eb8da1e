"""What every remote model provider shares: the HTTP client, retries, error mapping, SSE
reading, and the offline token estimate used where the provider's tokenizer is out of reach."""

import asyncio
import email.utils
import json
import math
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tertulia.core.errors import TertuliaError, Unavailable, UpstreamFailed
from tertulia.providers.base import ChatTurn

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504, 529})  # 529: Anthropic's "overloaded"


def remote_http_client(connect_timeout: float = 10.0, read_timeout: float = 120.0) -> httpx.AsyncClient:
    """The one client a process uses for every remote provider (it pools connections).

    `read_timeout` bounds each wait for bytes: for the reply to start, and between two
    pieces of a streamed reply.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is tried again before its reply has started."""

    attempts: int = 3
    base_delay: float = 0.5  # seconds; doubles each attempt, with jitter
    max_delay: float = 8.0
    max_retry_after: float = 20.0  # a provider asking for a longer wait fails the request now

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class SseEvent:
    event: str  # "message" unless the stream named it
    data: str


class RemoteEndpoint:
    """One model at one provider, as the HTTP plumbing sees it: sends, retries, maps errors.

    Every message it raises names the provider and the model and never holds the API key.
    """

    def __init__(
        self,
        provider: str,
        model_id: str,
        api_key: str | None,
        client: httpx.AsyncClient,
        retry: RetryPolicy,
        refuses_key: Callable[[int, Any], bool] | None = None,
        retry_hint: Callable[[Any], float | None] | None = None,
    ) -> None:
        self.provider = provider
        self.model_id = model_id
        self._api_key = api_key
        self._client = client
        self._retry = retry
        # Some providers refuse a bad key with a status other than 401/403 (Gemini: 400).
        self._refuses_key = refuses_key or (lambda status, body: False)
        # Some providers say how long to wait in the error body rather than in Retry-After.
        self._retry_hint = retry_hint or (lambda body: None)

    async def open(
        self, url: str, headers: dict[str, str], body: dict[str, Any], files: dict[str, Any] | None = None
    ) -> httpx.Response:
        """POSTs `body` and returns the open (streaming) response once it answered 2xx.

        `body` goes as JSON, or, with `files`, as the form fields of a multipart upload.

        Rate limits, server errors, refused connections and timeouts are tried again, up
        to the policy's attempts, honouring `Retry-After`. Nothing of the body has been read
        yet, so a retry can never repeat a piece of a reply.
        """
        if files is None:
            request = self._client.build_request("POST", url, headers=headers, json=body)
        else:
            request = self._client.build_request("POST", url, headers=headers, data=body, files=files)
        for attempt in range(1, self._retry.attempts + 1):
            last = attempt == self._retry.attempts
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException as error:
                if last:
                    raise self.timed_out(error) from None
                delay = self._retry.backoff(attempt)
            except httpx.TransportError as error:
                if last:
                    raise Unavailable(
                        f"could not reach {self.provider} for model {self.model_id!r} "
                        f"after {attempt} attempts ({type(error).__name__})",
                        self._details(),
                    ) from None
                delay = self._retry.backoff(attempt)
            else:
                if response.is_success:
                    return response
                reply = await self._read_error_body(response)
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
                if retry_after is None:
                    retry_after = self._retry_hint(reply)
                give_up = response.status_code not in RETRIED_STATUSES or last
                if retry_after is not None and retry_after > self._retry.max_retry_after:
                    give_up = True
                if give_up:
                    raise self._status_error(response.status_code, reply, attempt, retry_after)
                delay = retry_after if retry_after is not None else self._retry.backoff(attempt)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def post_json(
        self, url: str, headers: dict[str, str], body: dict[str, Any], files: dict[str, Any] | None = None
    ) -> Any:
        """A whole (non-streamed) JSON reply, with the same retries and errors as `open`."""
        response = await self.open(url, headers, body, files)
        try:
            content = await response.aread()
        except httpx.RequestError as error:
            raise self.read_failed(error) from None
        finally:
            await response.aclose()
        return self.parse_json(content)

    async def stream_events(
        self, url: str, headers: dict[str, str], body: dict[str, Any]
    ) -> AsyncIterator[SseEvent]:
        """POSTs `body` and yields the server-sent events of the reply, strictly parsed.

        Anything that is not an SSE line (a stray JSON document, an HTML error page behind
        a proxy) is a malformed reply, not something to skip silently. Closing this
        iterator early closes the response, which tells the provider to stop generating.
        """
        response = await self.open(url, headers, body)
        event, data = "", []
        try:
            async for line in response.aiter_lines():
                if not line:
                    if data:
                        yield SseEvent(event or "message", "\n".join(data))
                    event, data = "", []
                    continue
                if line.startswith(":"):  # a comment, used as a keep-alive
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "data":
                    data.append(value)
                elif field == "event":
                    event = value
                elif field not in ("id", "retry"):
                    raise self.malformed(f"a line that is not server-sent events: {line[:60]!r}")
            if data:  # the last event, sent without its closing blank line
                yield SseEvent(event or "message", "\n".join(data))
        except httpx.RequestError as error:
            raise self.read_failed(error) from None
        finally:
            await response.aclose()

    def parse_json(self, text: str | bytes) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise self.malformed("a body that is not valid JSON") from None

    def malformed(self, what: str) -> UpstreamFailed:
        return UpstreamFailed(
            self._scrub(f"{self.provider} sent a malformed reply for model {self.model_id!r}: {what}"),
            self._details(),
        )

    def failed_mid_reply(self, body: Any, overloaded: bool = False) -> TertuliaError:
        """An error the provider reported inside an already started stream."""
        said = _error_message(body) or "no reason given"
        text = self._scrub(f"{self.provider} failed mid-reply for model {self.model_id!r}: {said}")
        return Unavailable(text, self._details()) if overloaded else UpstreamFailed(text, self._details())

    def timed_out(self, error: httpx.TimeoutException) -> UpstreamFailed:
        timeout = self._client.timeout
        seconds = {
            httpx.ConnectTimeout: timeout.connect,
            httpx.WriteTimeout: timeout.write,
            httpx.PoolTimeout: timeout.pool,
        }.get(type(error), timeout.read)
        waited = f" after {seconds:g} s" if seconds is not None else ""
        return UpstreamFailed(
            f"{self.provider} timed out{waited} for model {self.model_id!r}", self._details()
        )

    def read_failed(self, error: httpx.RequestError) -> UpstreamFailed:
        """A reply that started but could not be read to its end."""
        if isinstance(error, httpx.TimeoutException):
            return self.timed_out(error)
        if isinstance(error, httpx.DecodingError):
            return self.malformed("a body that could not be decoded")
        return UpstreamFailed(
            f"the connection to {self.provider} broke during the reply for model {self.model_id!r} "
            f"({type(error).__name__})",
            self._details(),
        )

    async def _read_error_body(self, response: httpx.Response) -> Any:
        try:
            content = await response.aread()
        except httpx.HTTPError:
            content = b""
        finally:
            await response.aclose()
        try:
            return json.loads(content)
        except ValueError:
            return content.decode(errors="replace")

    def _status_error(
        self, status: int, body: Any, attempts: int, retry_after: float | None
    ) -> TertuliaError:
        details = self._details(status=status)
        model = f"model {self.model_id!r}"
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        said = _error_message(body)
        said = f": {said}" if said else ""
        if status in (401, 403) or self._refuses_key(status, body):
            # The provider's own words may quote part of the key: they are left out.
            return UpstreamFailed(
                f"{self.provider} refused the API key (HTTP {status}); check the key configured for {model}",
                details,
            )
        if status == 404:
            return UpstreamFailed(
                f"{self.provider} does not know the {model} (HTTP 404); check the model id and the base URL",
                details,
            )
        if status == 429:
            if retry_after is not None:
                details["retry_after"] = retry_after
            message = f"rate limited by provider: {self.provider} refused {model}{tried} (HTTP 429){said}"
            return Unavailable(self._scrub(message), details)
        if status >= 500:
            message = f"{self.provider} failed{tried} for {model} (HTTP {status}){said}"
        else:
            message = f"{self.provider} rejected the request for {model} (HTTP {status}){said}"
        return UpstreamFailed(self._scrub(message), details)

    def _details(self, **more: Any) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model_id, **more}

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "[api key]") if self._api_key else text


def _error_message(body: Any) -> str:
    """The human part of a provider's error body, whatever its envelope."""
    if isinstance(body, list) and body:  # Gemini wraps some errors in a list
        body = body[0]
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            error = error.get("message") or error.get("type") or ""
        return str(error)[:300]
    return str(body).strip()[:300]


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds to wait: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


# Kana, CJK ideographs (with extensions and compatibility forms) and Hangul: each is about one
# token in the tokenizers of the big providers, while UTF-8 spends three bytes on it.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
_TOKENS_PER_TURN = 4  # role marker and separators around each message
_TOKENS_PER_PROMPT = 3  # the opening of the assistant's reply


def estimate_tokens(text: str) -> int:
    """An offline estimate: one token per CJK character, one per four UTF-8 bytes of the rest.

    Remote providers' tokenizers are not available here; this errs slightly high for
    English prose, which is the safe side for trimming history to a budget.
    """
    cjk = len(_CJK.findall(text))
    rest = len(_CJK.sub("", text).encode())
    return cjk + math.ceil(rest / 4)


def estimate_prompt_tokens(turns: Sequence[ChatTurn]) -> int:
    return _TOKENS_PER_PROMPT + sum(_TOKENS_PER_TURN + estimate_tokens(turn.content) for turn in turns)


class RemoteChatModel:
    """What remote chat models share: their name, their window and the token estimate."""

    def __init__(self, model_id: str, context_tokens: int) -> None:
        self._model_id = model_id
        self._context_tokens = context_tokens

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def context_tokens(self) -> int:
        return self._context_tokens

    async def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def count_prompt_tokens(self, turns: Sequence[ChatTurn]) -> int:
        return estimate_prompt_tokens(turns)


class RemoteEmbedder:
    """What remote embedders share: their name and the size of their vectors.

    A size given to the constructor is enforced; without one it is taken from a table of
    well-known models, else learned from the first reply and enforced from then on. A
    vector of the wrong length never reaches the index.
    """

    def __init__(self, endpoint: RemoteEndpoint, dimension: int | None, known: dict[str, int]) -> None:
        self._endpoint = endpoint
        self._dimension = dimension or known.get(endpoint.model_id.removeprefix("models/"))

    @property
    def model_id(self) -> str:
        return self._endpoint.model_id

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise Unavailable(
                f"the embedding size of {self._endpoint.provider} model {self.model_id!r} is not known "
                "until it has embedded once; configure its dimension",
                {"provider": self._endpoint.provider, "model": self.model_id},
            )
        return self._dimension

    max_input_tokens = 8191  # OpenAI's limit; other providers' are close to or above it
    relevance_floor = 0.0  # not measured for remote models: the bot's min_k decides

    async def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(estimate_tokens(text) for text in texts)

    def counter(self) -> Callable[[str], int]:
        return estimate_tokens

    def _checked(self, vectors: list[list[float]], inputs: int) -> list[list[float]]:
        endpoint = self._endpoint
        if len(vectors) != inputs:
            raise endpoint.malformed(f"{len(vectors)} embeddings for {inputs} inputs")
        if self._dimension is None and vectors:
            self._dimension = len(vectors[0])
        for vector in vectors:
            if len(vector) != self._dimension:
                raise UpstreamFailed(
                    f"{endpoint.provider} returned embeddings of {len(vector)} numbers for model "
                    f"{self.model_id!r}, which is configured for {self._dimension}",
                    {"provider": endpoint.provider, "model": self.model_id},
                )
        return vectors


def join_system_turns(turns: Sequence[ChatTurn]) -> tuple[str, list[ChatTurn]]:
    """For APIs that take the system prompt apart from the conversation: every system turn,
    in order, joined into one instruction, and the other turns."""
    system = "\n\n".join(turn.content for turn in turns if turn.role == "system")
    return system, [turn for turn in turns if turn.role != "system"]


__all__ = [
    "RETRIED_STATUSES",
    "RemoteChatModel",
    "RemoteEmbedder",
    "RemoteEndpoint",
    "RetryPolicy",
    "SseEvent",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "join_system_turns",
    "remote_http_client",
]
