"""Local stand-ins for the paid model APIs: Anthropic's Messages API, Google's Gemini API and
OpenAI's chat completions and embeddings, speaking their wire protocols byte for byte.

One raw ASGI app serves all three on their real paths. A test switches on a failure mode
(`StandIn.reset(mode=...)`) and reads back what the client sent (`StandIn.received`).
Every request is checked the way the real API checks it: a wrong key, a missing header or
a field the real API refuses gets that API's own error reply, so a client that sends
something wrong fails its test.
"""

import asyncio
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs

import uvicorn

from tests.live_server import free_port

API_KEY = "sk-standin-5f3a9c1e7b2d4f60"  # the one key the stand-ins accept

MODES = (
    "ok",
    "unauthenticated",  # a 401 whatever the key (Gemini's UNAUTHENTICATED, for OAuth-style refusals)
    "unknown_model",  # 404, as for a model id the provider does not have
    "rejected",  # 400 whose message quotes the key it was sent, to prove the client scrubs it
    "rate_limited_once",  # 429 asking to wait `retry_after` seconds, then normal replies
    "rate_limited",  # 429 every time
    "server_error",  # 500 every time
    "slow",  # answers only after `stall` seconds
    "stall",  # starts the stream, then goes quiet for `stall` seconds
    "garbage",  # a line in the stream that is not server-sent events
    "truncated",  # an event whose JSON is cut off, then the end of the body
    "cut_off",  # the stream ends without its closing event
    "error_event",  # the provider's own mid-stream error event
    "endless",  # a long, slow stream, to see whether the client hangs up
)


@dataclass
class Script:
    mode: str = "ok"
    reply: tuple[str, ...] = ("Hello", ", wor", "ld!")
    usage: tuple[int, int] = (21, 4)  # prompt and completion tokens, as the provider counts them
    retry_after: float = 1.0  # seconds a 429 asks the client to wait
    stall: float = 5.0  # seconds "slow" and "stall" keep the client waiting
    pause: float = 0.0  # seconds before each frame of a reply, as a model takes to make a token
    # The function a whole (non-streamed) request offering tools is answered with as a call
    # (name, arguments), in each API's own shape; None answers it with `reply` as text.
    tool_call: tuple[str, dict[str, Any]] | None = None


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when it arrived


Reply = tuple[int, dict[str, str], bytes]


OPENAI_EMBEDDING_SIZES = {
    "text-embedding-ada-002": 1536,
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
}


def fake_vector(text: str, size: int) -> list[float]:
    """A deterministic vector for a text: equal texts, equal vectors."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % 32] - 127.5) / 127.5, 6) for i in range(size)]


class Anthropic:
    """POST /v1/messages, streaming; errors as {"type":"error","error":{...}}."""

    _FIELDS = frozenset({
        "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "top_k",
        "stop_sequences", "metadata", "tools", "tool_choice", "thinking", "service_tier",
    })  # fmt: skip
    _ERRORS: ClassVar[dict[str, tuple[Any, ...]]] = {
        "auth": (401, "authentication_error"),
        "not_found": (404, "not_found_error"),
        "rate_limit": (429, "rate_limit_error"),
        "server": (500, "api_error"),
        "invalid": (400, "invalid_request_error"),
    }

    def handles(self, path: str) -> bool:
        return path == "/v1/messages"

    def key_of(self, headers: dict[str, str], query: dict[str, list[str]]) -> str | None:
        return headers.get("x-api-key")

    def error(self, kind: str, message: str, headers: dict[str, str] | None = None) -> Reply:
        status, error_type = self._ERRORS[kind]
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": "req_011CStandIn",
        }
        return status, {"content-type": "application/json", **(headers or {})}, _compact(body)

    def bad_key(self, key: str | None) -> Reply:
        return self.error("auth", "invalid x-api-key")

    def rate_limited(self, seconds: float) -> Reply:
        message = "Number of request tokens has exceeded your per-minute rate limit"
        return self.error("rate_limit", message, {"retry-after": f"{seconds:g}"})

    def problems(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> list[str]:
        if headers.get("anthropic-version") != "2023-06-01":
            return ["anthropic-version: header is required"]
        if not isinstance(body, dict):
            return ["There was an error parsing the body of your request"]
        found = [f"{name}: Extra inputs are not permitted" for name in body if name not in self._FIELDS]
        if not isinstance(body.get("max_tokens"), int):
            found.append("max_tokens: Field required")
        if not isinstance(body.get("model"), str):
            found.append("model: Field required")
        if "system" in body and not isinstance(body["system"], str | list):
            found.append("system: Input should be a valid string")
        for index, message in enumerate(body.get("messages") or [None]):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                found.append(f"messages.{index}.role: Input should be 'user' or 'assistant'")
            elif not isinstance(message.get("content"), str | list):
                found.append(f"messages.{index}.content: Field required")
        if not 0 <= body.get("temperature", 1) <= 1:
            found.append("temperature: Input should be less than or equal to 1")
        if body.get("stream") is not True and not body.get("tools"):
            found.append("stream: this stand-in serves streamed replies only (or, offering tools, one whole)")
        for index, tool in enumerate(body.get("tools") or []):
            schema = tool.get("input_schema") if isinstance(tool, dict) else None
            if not re.fullmatch(
                r"[a-zA-Z0-9_-]{1,64}", str(tool.get("name") if isinstance(tool, dict) else "")
            ):
                found.append(
                    f"tools.{index}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            elif not isinstance(schema, dict) or schema.get("type") != "object":
                found.append(f"tools.{index}.custom.input_schema.type: Input should be 'object'")
        choice = body.get("tool_choice")
        if choice is not None and (
            not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
        ):
            found.append("tool_choice: Input tag does not match any of the expected tags")
        return found

    def is_whole(self, path: str, body: Any) -> bool:
        return body.get("stream") is not True

    def completion(self, model: str, script: Script) -> Reply:
        prompt, completion = script.usage
        if script.tool_call is not None:
            name, arguments = script.tool_call
            content = [{"type": "tool_use", "id": "toolu_01StandIn", "name": name, "input": arguments}]
        else:
            content = [{"type": "text", "text": "".join(script.reply)}]
        body = {
            "id": "msg_01StandIn",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if script.tool_call is not None else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }
        return 200, {"content-type": "application/json"}, _compact(body)

    def model_of(self, path: str, body: Any) -> str:
        return str(body.get("model")) if isinstance(body, dict) else "?"

    def frames(self, model: str, script: Script) -> list[bytes]:
        prompt, completion = script.usage
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_01StandIn",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": prompt - 5,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 5,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        }
        frames = [
            self._event(start),
            self._event(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            ),
            b'event: ping\ndata: {"type": "ping"}\n\n',
        ]
        for piece in script.reply:
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            frames.append(self._event(delta))
        frames += [
            self._event({"type": "content_block_stop", "index": 0}),
            self._event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": completion},
                }
            ),
            self._event({"type": "message_stop"}),
        ]
        return frames

    def error_frame(self) -> bytes:
        return self._event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})

    def truncated_frame(self) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel\n\n'
        )

    def stream_headers(self) -> dict[str, str]:
        return {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}

    def is_embedding(self, path: str) -> bool:
        return False

    def embeddings(self, path: str, body: Any) -> Reply:
        raise AssertionError("Anthropic has no embeddings")

    def _event(self, payload: dict[str, Any]) -> bytes:
        return f"event: {payload['type']}\ndata: ".encode() + _compact(payload) + b"\n\n"


_GEMINI_SCHEMA = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
    "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
    "propertyOrdering", "default", "items", "minimum", "maximum",
})  # fmt: skip
_GEMINI_TYPES = frozenset(
    {"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
)


def _gemini_schema_problems(schema: Any, where: str) -> list[str]:
    """Gemini's Schema is an OpenAPI subset: JSON Schema's other keywords are unknown names."""
    if not isinstance(schema, dict):
        return [f"{where}: must be a Schema object"]
    found = [f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\'' for name in schema
             if name not in _GEMINI_SCHEMA]  # fmt: skip
    if "type" in schema and schema["type"] not in _GEMINI_TYPES:
        found.append(
            f"Invalid value at '{where}.type' "
            f'(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "{schema["type"]}"'
        )
    for name, child in (schema.get("properties") or {}).items():
        found += _gemini_schema_problems(child, f"{where}.properties[{name}].value")
    return found


class Gemini:
    """POST /v1beta/models/{model}:streamGenerateContent?alt=sse and :batchEmbedContents;
    errors as {"error":{"code","message","status","details"}}, pretty-printed as Google does."""

    _FIELDS = frozenset(
        {"contents", "systemInstruction", "generationConfig", "safetySettings", "tools", "toolConfig"}
    )
    _CONFIG = frozenset({
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount",
        "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "thinkingConfig",
    })  # fmt: skip
    _TASKS = frozenset(
        {"RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING"}
    )
    _ERRORS: ClassVar[dict[str, tuple[Any, ...]]] = {
        "auth": (401, "UNAUTHENTICATED"),
        "not_found": (404, "NOT_FOUND"),
        "rate_limit": (429, "RESOURCE_EXHAUSTED"),
        "server": (500, "INTERNAL"),
        "invalid": (400, "INVALID_ARGUMENT"),
        "denied": (403, "PERMISSION_DENIED"),
    }
    _PREFIX = "/v1beta/models/"

    def handles(self, path: str) -> bool:
        return path.startswith(self._PREFIX)

    def key_of(self, headers: dict[str, str], query: dict[str, list[str]]) -> str | None:
        return headers.get("x-goog-api-key") or (query.get("key") or [None])[0]

    def error(self, kind: str, message: str, details: list[dict[str, Any]] | None = None) -> Reply:
        status, name = self._ERRORS[kind]
        error: dict[str, Any] = {"code": status, "message": message, "status": name}
        if details:
            error["details"] = details
        return (
            status,
            {"content-type": "application/json; charset=UTF-8"},
            json.dumps({"error": error}, indent=2).encode(),
        )

    def bad_key(self, key: str | None) -> Reply:
        if key is None:
            return self.error(
                "denied", "Method doesn't allow unregistered callers (callers without identity)."
            )
        reason = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        return self.error("invalid", "API key not valid. Please pass a valid API key.", [reason])

    def rate_limited(self, seconds: float) -> Reply:
        # Gemini says how long to wait in a RetryInfo detail, not in a Retry-After header.
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds:g}s"}
        message = "You exceeded your current quota, please check your plan and billing details."
        return self.error("rate_limit", message, [retry])

    def model_of(self, path: str, body: Any) -> str:
        return path.removeprefix(self._PREFIX).partition(":")[0]

    def problems(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> list[str]:
        method = path.partition(":")[2]
        if not isinstance(body, dict):
            return ["Invalid JSON payload received."]
        if method == "batchEmbedContents":
            return self._embedding_problems(path, body)
        if method not in ("streamGenerateContent", "generateContent"):
            return [f"Method not found: {method}"]
        if method == "streamGenerateContent" and query.get("alt") != ["sse"]:
            return ["this stand-in serves streamGenerateContent with alt=sse only"]
        if method == "generateContent" and not body.get("tools"):
            return ["this stand-in serves generateContent only to a request offering tools"]
        found = [
            f'Invalid JSON payload received. Unknown name "{name}"'
            for name in body
            if name not in self._FIELDS
        ]
        config = body.get("generationConfig", {})
        found += [
            f"Unknown name \"{name}\" at 'generation_config'" for name in config if name not in self._CONFIG
        ]
        for index, content in enumerate(body.get("contents") or [None]):
            if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
                found.append(f"contents[{index}]: Please use a valid role: user, model.")
            elif not all(isinstance(part.get("text"), str) for part in content.get("parts") or [{}]):
                found.append(f"contents[{index}].parts: a part must hold text")
        system = body.get("systemInstruction")
        if system is not None and not (isinstance(system, dict) and isinstance(system.get("parts"), list)):
            found.append("systemInstruction: must be a Content with parts")
        for index, tool in enumerate(body.get("tools") or []):
            for number, function in enumerate(tool.get("functionDeclarations") or [None]):
                where = f"tools[{index}].function_declarations[{number}]"
                if not isinstance(function, dict) or not re.fullmatch(
                    r"[a-zA-Z_][a-zA-Z0-9_.-]{0,63}", str(function.get("name"))
                ):
                    found.append(f"{where}.name: Invalid function name")
                else:
                    found += _gemini_schema_problems(function.get("parameters", {}), f"{where}.parameters")
        return found

    def is_whole(self, path: str, body: Any) -> bool:
        return path.endswith(":generateContent")

    def completion(self, model: str, script: Script) -> Reply:
        prompt, completion = script.usage
        if script.tool_call is not None:
            name, arguments = script.tool_call
            parts: list[dict[str, Any]] = [{"functionCall": {"name": name, "args": arguments}}]
        else:
            parts = [{"text": "".join(script.reply)}]
        body = {
            "candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "candidatesTokenCount": completion,
                "totalTokenCount": prompt + completion,
            },
            "modelVersion": model,
            "responseId": "StandIn",
        }
        return 200, {"content-type": "application/json; charset=UTF-8"}, json.dumps(body, indent=2).encode()

    def _embedding_problems(self, path: str, body: dict[str, Any]) -> list[str]:
        expected = "models/" + self.model_of(path, body)
        found = []
        for index, request in enumerate(body.get("requests") or [None]):
            if not isinstance(request, dict) or request.get("model") != expected:
                found.append(f"requests[{index}].model: must be the model of the URL, {expected}")
            elif request.get("taskType", "RETRIEVAL_QUERY") not in self._TASKS:
                found.append(f"requests[{index}].taskType: invalid value")
            elif not isinstance(request.get("content", {}).get("parts", [{}])[0].get("text"), str):
                found.append(f"requests[{index}].content: a part must hold text")
        return found

    def frames(self, model: str, script: Script) -> list[bytes]:
        prompt, completion = script.usage
        frames = []
        for index, piece in enumerate(script.reply):
            last = index == len(script.reply) - 1
            candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}}
            usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
            if last:
                candidate["finishReason"] = "STOP"
                usage = {
                    "promptTokenCount": prompt,
                    "candidatesTokenCount": completion,
                    "totalTokenCount": prompt + completion,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
                }
            candidate["index"] = 0
            chunk = {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": "StandInResponse",
            }
            frames.append(self._event(chunk))
        return frames

    def error_frame(self) -> bytes:
        error = {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }
        return self._event({"error": error})

    def truncated_frame(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "Hel\r\n\r\n'

    def stream_headers(self) -> dict[str, str]:
        return {"content-type": "text/event-stream", "x-content-type-options": "nosniff"}

    def is_embedding(self, path: str) -> bool:
        return path.endswith(":batchEmbedContents")

    def embeddings(self, path: str, body: Any) -> Reply:
        vectors = [
            {
                "values": fake_vector(
                    request["content"]["parts"][0]["text"], request.get("outputDimensionality", 768)
                )
            }
            for request in body["requests"]
        ]
        return (
            200,
            {"content-type": "application/json; charset=UTF-8"},
            json.dumps({"embeddings": vectors}).encode(),
        )

    def _event(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(payload, separators=(",", ": ")).encode() + b"\r\n\r\n"


class OpenAI:
    """POST /v1/chat/completions (streamed) and /v1/embeddings; errors as
    {"error":{"message","type","param","code"}}."""

    _FIELDS = frozenset({
        "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "n", "presence_penalty", "frequency_penalty", "seed", "user",
        "tools", "tool_choice", "response_format", "logit_bias", "logprobs", "top_logprobs",
    })  # fmt: skip
    _ERRORS: ClassVar[dict[str, tuple[Any, ...]]] = {
        "auth": (401, "invalid_request_error", "invalid_api_key"),
        "not_found": (404, "invalid_request_error", "model_not_found"),
        "rate_limit": (429, "requests", "rate_limit_exceeded"),
        "server": (500, "server_error", None),
        "invalid": (400, "invalid_request_error", None),
    }

    def handles(self, path: str) -> bool:
        return path in ("/v1/chat/completions", "/v1/embeddings")

    def key_of(self, headers: dict[str, str], query: dict[str, list[str]]) -> str | None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        return key if scheme == "Bearer" else None

    def error(self, kind: str, message: str, headers: dict[str, str] | None = None) -> Reply:
        status, error_type, code = self._ERRORS[kind]
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        return (
            status,
            {"content-type": "application/json", **(headers or {})},
            json.dumps(body, indent=4).encode(),
        )

    def bad_key(self, key: str | None) -> Reply:
        # OpenAI quotes the key it was given (partly masked); the stand-in quotes all of it,
        # which is the harder test for a client that must not pass it on.
        return self.error(
            "auth", f"Incorrect API key provided: {key}. You can find your API key in your account."
        )

    def rate_limited(self, seconds: float) -> Reply:
        message = f"Rate limit reached for requests. Please try again in {seconds:g}s."
        return self.error("rate_limit", message, {"retry-after": f"{seconds:g}"})

    def model_of(self, path: str, body: Any) -> str:
        return str(body.get("model")) if isinstance(body, dict) else "?"

    def problems(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> list[str]:
        if not isinstance(body, dict):
            return ["We could not parse the JSON body of your request."]
        if path == "/v1/embeddings":
            if not isinstance(body.get("input"), str | list) or not body.get("model"):
                return ["'input' and 'model' are required"]
            return []
        found = [
            f"Unrecognized request argument supplied: {name}" for name in body if name not in self._FIELDS
        ]
        for index, message in enumerate(body.get("messages") or [None]):
            if not isinstance(message, dict) or message.get("role") not in (
                "system",
                "developer",
                "user",
                "assistant",
            ):
                found.append(f"Invalid value for 'messages[{index}].role'")
        if body.get("stream") is not True and not body.get("tools"):
            found.append("this stand-in serves streamed replies only (or, offering tools, one whole)")
        for index, tool in enumerate(body.get("tools") or []):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(function, dict)
                or tool.get("type") != "function"
                or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(function.get("name")))
                or not isinstance(function.get("parameters", {}), dict)
            ):
                found.append(
                    f"Invalid 'tools[{index}]': a function with a name matching ^[a-zA-Z0-9_-]{{1,64}}$"
                )
        if body.get("tool_choice") not in (None, "auto", "none", "required"):
            found.append("Invalid value for 'tool_choice'")
        if "stream_options" in body and not isinstance(body["stream_options"], dict):
            found.append("Invalid type for 'stream_options'")
        return found

    def frames(self, model: str, script: Script) -> list[bytes]:
        prompt, completion = script.usage
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
        deltas += [{"content": piece} for piece in script.reply]
        frames = [self._chunk(model, [self._choice(delta, None)]) for delta in deltas]
        frames.append(self._chunk(model, [self._choice({}, "stop")]))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        }
        frames.append(self._chunk(model, [], usage))
        frames.append(b"data: [DONE]\n\n")
        return frames

    def is_whole(self, path: str, body: Any) -> bool:
        return body.get("stream") is not True

    def completion(self, model: str, script: Script) -> Reply:
        """A whole chat.completion: the scripted tool call, or the scripted reply as text."""
        prompt, completion = script.usage
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if script.tool_call is not None:
            name, arguments = script.tool_call
            message["tool_calls"] = [
                {
                    "id": "call_StandIn1",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ]
        else:
            message["content"] = "".join(script.reply)
        body = {
            "id": "chatcmpl-StandIn",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if script.tool_call is not None else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "system_fingerprint": "fp_standin",
        }
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()

    def error_frame(self) -> bytes:
        error = {"message": "The server had an error while processing your request.", "type": "server_error"}
        return b"data: " + _compact({"error": {**error, "param": None, "code": None}}) + b"\n\n"

    def truncated_frame(self) -> bytes:
        return (
            b'data: {"id":"chatcmpl-StandIn","object":"chat.completion.chunk",'
            b'"choices":[{"index":0,"delta":{"con\n\n'
        )

    def stream_headers(self) -> dict[str, str]:
        return {"content-type": "text/event-stream; charset=utf-8", "openai-processing-ms": "12"}

    def is_embedding(self, path: str) -> bool:
        return path == "/v1/embeddings"

    def embeddings(self, path: str, body: Any) -> Reply:
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        # OpenAI's own models have their real sizes; any other model here gives 8 numbers.
        size = body.get("dimensions") or OPENAI_EMBEDDING_SIZES.get(body["model"], 8)
        data = [
            {"object": "embedding", "index": index, "embedding": fake_vector(text, size)}
            for index, text in enumerate(inputs)
        ]
        data.reverse()  # the API numbers its items; a client must not rely on their order
        reply = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 5, "total_tokens": 5},
        }
        return 200, {"content-type": "application/json"}, json.dumps(reply).encode()

    def _choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def _chunk(self, model: str, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-StandIn",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_standin",
            "choices": choices,
            "usage": usage,
        }
        return b"data: " + _compact(chunk) + b"\n\n"


def _compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


Dialect = Anthropic | Gemini | OpenAI
DIALECTS: tuple[Dialect, ...] = (Anthropic(), Gemini(), OpenAI())


class StandIn:
    """The ASGI app. Runs in a server thread; tests read `received` and `disconnected`."""

    def __init__(self) -> None:
        self.url = ""  # set by `serving`
        self.reset()

    def reset(self, **script: Any) -> None:
        self.script = Script(**script)
        assert self.script.mode in MODES, self.script.mode
        self.received: list[Received] = []
        self.frames_sent = 0
        self.disconnected = threading.Event()  # the client hung up before the reply ended

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            await self._answer(scope, body, send, gone)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _answer(self, scope: dict[str, Any], raw: bytes, send: Any, gone: asyncio.Event) -> None:
        path = scope["path"]
        query = parse_qs(scope["query_string"].decode())
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        dialect = next((dialect for dialect in DIALECTS if dialect.handles(path)), None)
        if dialect is None or scope["method"] != "POST":
            await _send(send, (404, {"content-type": "text/plain"}, b"Not Found"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.received.append(Received(path, query, headers, body, time.monotonic()))
        script, attempt = self.script, len(self.received)
        model = dialect.model_of(path, body)
        key = dialect.key_of(headers, query)
        if key != API_KEY:
            await _send(send, dialect.bad_key(key))
            return
        problems = dialect.problems(path, query, headers, body)
        if problems:
            await _send(send, dialect.error("invalid", "; ".join(problems)))
            return
        mode = script.mode
        refusal = {
            "unauthenticated": lambda: dialect.error(
                "auth", "Request had invalid authentication credentials."
            ),
            "unknown_model": lambda: dialect.error("not_found", f"model: {model} is not found"),
            "rejected": lambda: dialect.error("invalid", f"this request cannot be served with key {key}"),
            "rate_limited": lambda: dialect.rate_limited(script.retry_after),
            "server_error": lambda: dialect.error("server", "Internal server error"),
        }.get(mode)
        if mode == "rate_limited_once" and attempt == 1:
            refusal = lambda: dialect.rate_limited(script.retry_after)  # noqa: E731
        if refusal is not None:
            await _send(send, refusal())
            return
        if mode == "slow" and await _quiet_for(script.stall, gone):
            return
        if dialect.is_embedding(path):
            await _send(send, dialect.embeddings(path, body))
            return
        if dialect.is_whole(path, body):
            await _send(send, dialect.completion(model, script))
            return
        await self._stream(dialect, model, script, send, gone)

    async def _stream(
        self, dialect: Dialect, model: str, script: Script, send: Any, gone: asyncio.Event
    ) -> None:
        frames = dialect.frames(model, script)
        pause, stall_after = script.pause, None
        if script.mode == "garbage":
            frames.insert(1, b"this is not an event stream\n\n")
        elif script.mode == "truncated":
            frames = [frames[0], dialect.truncated_frame()]
        elif script.mode == "cut_off":
            frames = frames[:-1]
        elif script.mode == "error_event":
            frames = [*frames[:2], dialect.error_frame()]
        elif script.mode == "stall":
            stall_after = len(frames) // 2
        elif script.mode == "endless":
            frames = dialect.frames(model, Script(reply=("tick ",) * 400))
            pause = 0.02
        headers = [(name.encode(), value.encode()) for name, value in dialect.stream_headers().items()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, frame in enumerate(frames):
            if index == stall_after and await _quiet_for(script.stall, gone):
                return
            if pause and await _quiet_for(pause, gone):
                self.disconnected.set()
                return
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            self.frames_sent += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _watch_disconnect(receive: Any, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _quiet_for(seconds: float, gone: asyncio.Event) -> bool:
    """Waits `seconds`, or less if the client hangs up; says whether it did."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gone.wait(), seconds)
    return gone.is_set()


async def _send(send: Any, reply: Reply) -> None:
    status, headers, body = reply
    raw_headers = [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def serving(app: StandIn) -> Iterator[str]:
    """Runs `app` under uvicorn on a free port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the stand-in server did not start")
        time.sleep(0.02)
    app.url = f"http://127.0.0.1:{port}"
    try:
        yield app.url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
