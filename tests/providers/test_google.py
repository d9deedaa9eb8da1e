"""GeminiChat and GeminiEmbedder against a stand-in speaking Google's Generative Language API."""

import httpx
import pytest

from tertulia.core.errors import Unavailable, UpstreamFailed
from tertulia.providers.base import Usage
from tertulia.providers.google import GeminiChat, GeminiEmbedder
from tests.providers.conftest import QUICK_RETRY, SAMPLING, collect
from tests.providers.standins import API_KEY, StandIn, fake_vector


def gemini(
    url: str, http: httpx.AsyncClient, model: str = "gemini-2.5-flash", key: str = API_KEY
) -> GeminiChat:
    return GeminiChat(model, key, url, http, retry=QUICK_RETRY)


async def test_streams_the_reply_then_the_usage(standin: StandIn, http: httpx.AsyncClient) -> None:
    pieces, usages = await collect(gemini(standin.url, http))
    assert pieces == ["Hello", ", wor", "ld!"]
    assert usages == [Usage(prompt_tokens=21, completion_tokens=4)]


async def test_sends_what_generate_content_expects(standin: StandIn, http: httpx.AsyncClient) -> None:
    await collect(gemini(standin.url, http, model="models/gemini-2.5-flash"))
    [sent] = standin.received
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": ["sse"]}  # the key travels in a header, never in the URL
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert sent.body == {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Say hello."}]},
            {"role": "model", "parts": [{"text": "Hello."}]},
            {"role": "user", "parts": [{"text": "Again, to the world."}]},
        ],
        "generationConfig": {
            "temperature": SAMPLING.temperature,
            "topP": SAMPLING.top_p,
            "topK": SAMPLING.top_k,
            "maxOutputTokens": SAMPLING.max_tokens,
            "stopSequences": list(SAMPLING.stop),
        },
    }


async def test_an_oauth_style_refusal_is_a_refused_key(standin: StandIn, http: httpx.AsyncClient) -> None:
    # A wrong key gets 400 API_KEY_INVALID (covered with the other providers); this is the 401.
    standin.reset(mode="unauthenticated")
    with pytest.raises(UpstreamFailed) as caught:
        await collect(gemini(standin.url, http))
    assert "refused the API key (HTTP 401)" in str(caught.value)
    assert API_KEY not in str(caught.value)


async def test_a_missing_key_is_a_refused_key(standin: StandIn, http: httpx.AsyncClient) -> None:
    with pytest.raises(UpstreamFailed) as caught:
        await collect(GeminiChat("gemini-2.5-flash", None, standin.url, http, retry=QUICK_RETRY))
    assert "refused the API key (HTTP 403)" in str(caught.value)
    assert "x-goog-api-key" not in standin.received[0].headers


async def test_embeds_queries_and_passages_by_task_type(standin: StandIn, http: httpx.AsyncClient) -> None:
    embedder = GeminiEmbedder("text-embedding-004", API_KEY, standin.url, http, retry=QUICK_RETRY)
    assert embedder.dimension == 768  # a well-known model
    assert await embedder.embed(["rain", "sun"], "passage") == [
        fake_vector("rain", 768),
        fake_vector("sun", 768),
    ]
    await embedder.embed(["weather?"], "query")
    passages, query = standin.received
    assert passages.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert passages.headers["x-goog-api-key"] == API_KEY
    assert passages.body["requests"][0] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "rain"}]},
        "taskType": "RETRIEVAL_DOCUMENT",
    }
    assert query.body["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


async def test_asks_for_the_configured_dimension(standin: StandIn, http: httpx.AsyncClient) -> None:
    embedder = GeminiEmbedder("gemini-embedding-001", API_KEY, standin.url, http, 256, retry=QUICK_RETRY)
    [vector] = await embedder.embed(["rain"], "query")
    assert len(vector) == embedder.dimension == 256
    assert standin.received[0].body["requests"][0]["outputDimensionality"] == 256


async def test_learns_the_dimension_of_an_unknown_model(standin: StandIn, http: httpx.AsyncClient) -> None:
    embedder = GeminiEmbedder("brand-new-embedder", API_KEY, standin.url, http, retry=QUICK_RETRY)
    with pytest.raises(Unavailable, match="not known until it has embedded once"):
        _ = embedder.dimension
    await embedder.embed(["rain"], "query")
    assert embedder.dimension == 768


async def test_embedding_failures_map_like_chat_failures(standin: StandIn, http: httpx.AsyncClient) -> None:
    standin.reset(mode="rate_limited", retry_after=0)
    embedder = GeminiEmbedder("text-embedding-004", API_KEY, standin.url, http, retry=QUICK_RETRY)
    with pytest.raises(Unavailable, match="rate limited by provider"):
        await embedder.embed(["rain"], "query")
    assert len(standin.received) == 3
