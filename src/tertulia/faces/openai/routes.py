"""/v1/models, /v1/chat/completions and /v1/embeddings, as OpenAI serves them.

Every bot the key can see is a model (its id or its name), answering with its own system
prompt, settings and knowledge; raw models are named `provider/model` (or an installed
local model's bare id). Streaming is SSE `data: {chunk}` … `data: [DONE]`.
"""

import base64
import json
import secrets
import struct
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tertulia.core.accounts import Principal
from tertulia.core.chat import ChatEvent, Completion, Done, Failed, Sources, Token, collect_reply
from tertulia.core.embeddings import embed_texts
from tertulia.core.errors import Invalid, NotFound
from tertulia.core.knowledge.retrieval import Source
from tertulia.core.models import NamedModel, lookup_model, model_catalog
from tertulia.faces.deps import BearerPrincipal, RuntimeDep, SessionDep
from tertulia.faces.openai.errors import error_body
from tertulia.faces.openai.schemas import (
    ChatCompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)
from tertulia.providers.base import ChatTurn
from tertulia.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["openai"])
CurrentPrincipal = BearerPrincipal


def _card(named: NamedModel) -> ModelCard:
    if named.bot is not None:
        return ModelCard(
            id=named.bot.id,
            created=int(named.bot.created_at.timestamp()),
            owned_by=named.bot.account_id,
            tertulia={"kind": "bot", "name": named.bot.name, "description": named.bot.description},
        )
    assert named.choice is not None
    return ModelCard(
        id=named.name,
        created=0,
        owned_by=named.choice.provider,
        tertulia={"kind": "model", "provider": named.choice.provider, "task_type": named.choice.task_type},
    )


@router.get("/models")
async def list_models(principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep) -> ModelList:
    catalog = await model_catalog(session, principal, runtime.models.local_models())
    return ModelList(data=[_card(named) for named in catalog])


@router.get("/models/{model:path}")
async def get_model(
    model: str, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> ModelCard:
    local = runtime.models.local_models()
    try:
        return _card(await lookup_model(session, principal, model, "chat", local))
    except NotFound:  # perhaps an embedding model's bare id
        return _card(await lookup_model(session, principal, model, "embedding", local))


def _turns(body: ChatCompletionRequest) -> list[ChatTurn]:
    turns = []
    for message in body.messages:
        role = "system" if message.role in ("system", "developer") else message.role
        turns.append(ChatTurn(role, message.text()))
    return turns


class _Reply:
    """One completion's identity, shared by every chunk of it."""

    def __init__(self, model: str, bot_id: str | None) -> None:
        self.id = f"chatcmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())
        self.model = model
        self.extension = {"bot_id": bot_id, "sources": []}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def whole(self, done: Done) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": done.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": done.finish_reason,
                }
            ],
            "usage": _usage(done),
            "tertulia": {**self.extension, "sources": _sources(done.sources)},
        }


def _sources(sources: list[Source]) -> list[dict[str, Any]]:
    return [
        {
            "document_id": source.document_id,
            "document_name": source.document_name,
            "chunk_id": source.chunk_ref,
            "content": source.content,
            "score": source.score,
            "metadata": source.metadata,
        }
        for source in sources
    ]


def _usage(done: Done) -> dict[str, int]:
    return {
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "total_tokens": done.usage.total_tokens,
    }


async def _sse(
    reply: _Reply, first: ChatEvent, events: AsyncIterator[ChatEvent], include_usage: bool
) -> AsyncIterator[str]:
    async with aclosing(events):
        yield reply.chunk({"role": "assistant", "content": ""}, tertulia=reply.extension)
        event: ChatEvent | None = first
        while event is not None:
            if isinstance(event, Token):
                yield reply.chunk({"content": event.text})
            elif isinstance(event, Failed):
                # Mid-stream the status is already sent: OpenAI's clients raise on an
                # `error` member of a chunk.
                yield f"data: {json.dumps(error_body(event.error)[1], ensure_ascii=False)}\n\n"
                return
            elif isinstance(event, Done):
                yield reply.chunk({}, event.finish_reason)
                if include_usage:
                    body = {
                        "id": reply.id,
                        "object": "chat.completion.chunk",
                        "created": reply.created,
                        "model": reply.model,
                        "choices": [],
                        "usage": _usage(event),
                    }
                    yield f"data: {json.dumps(body)}\n\n"
                yield "data: [DONE]\n\n"
                return
            event = await anext(events, None)


async def _completion(
    runtime: Runtime, principal: Principal, session: Any, body: ChatCompletionRequest
) -> tuple[Completion, str | None]:
    named = await lookup_model(session, principal, body.model, "chat", runtime.models.local_models())
    stop = tuple(body.stop or ())
    completion = Completion(
        _turns(body),
        bot_id=named.bot.id if named.bot is not None else None,
        model=named.choice,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stop,
    )
    return completion, completion.bot_id


@router.post("/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> Response:
    completion, bot_id = await _completion(runtime, principal, session, body)
    await session.close()  # the engine opens its own; do not hold a connection while streaming
    reply = _Reply(body.model, bot_id)
    events = runtime.chat.complete(principal, completion)
    if not body.stream:
        return JSONResponse(reply.whole(await collect_reply(events)))
    # The first event decides the status: a failure before any token is a real HTTP error.
    # Sources come before any token, and go out in the first chunk.
    first = await anext(events, None)
    if isinstance(first, Sources):
        reply.extension["sources"] = _sources(first.sources)
        first = await anext(events, None)
    if first is None or isinstance(first, Failed):
        await events.aclose()
        raise first.error if first is not None else Invalid("the model gave no reply")
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _sse(reply, first, events, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _encoded(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post("/embeddings")
async def embeddings(
    body: EmbeddingRequest, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    named = await lookup_model(session, principal, body.model, "embedding", runtime.models.local_models())
    await session.close()
    texts = body.input
    embedded = await embed_texts(
        runtime.database,
        runtime.models,
        principal,
        texts,
        quota=runtime.settings.token_quota(principal.account.plan),
        purpose=body.input_type,
        bot_id=named.bot.id if named.bot is not None else None,
        model=named.choice,
    )
    if body.dimensions is not None and embedded.vectors and body.dimensions != len(embedded.vectors[0]):
        raise Invalid(
            f"this model returns {len(embedded.vectors[0])} dimensions",
            {"field": "dimensions"},
        )
    return {
        "object": "list",
        "model": body.model,
        "data": [
            {"object": "embedding", "index": index, "embedding": _encoded(vector, body.encoding_format)}
            for index, vector in enumerate(embedded.vectors)
        ],
        "usage": {
            "prompt_tokens": embedded.usage.prompt_tokens,
            "total_tokens": embedded.usage.prompt_tokens,
        },
    }
