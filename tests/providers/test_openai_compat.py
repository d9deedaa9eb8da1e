"""OpenAICompatibleChat and OpenAICompatibleEmbedder: against llama-cpp-python's real
OpenAI-compatible server running a packaged model, and against a stand-in of OpenAI's API
for what a local server cannot show (usage in streams, failures on demand)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tertulia.core.errors import Unavailable, UpstreamFailed
from tertulia.providers.base import ChatTurn, Sampling, Usage
from tertulia.providers.openai_compat import OpenAICompatibleChat, OpenAICompatibleEmbedder
from tertulia.providers.remote_http import remote_http_client
from tests.providers.conftest import LLAMA_KEY, QUICK_RETRY, SAMPLING, TURNS, collect
from tests.providers.standins import API_KEY, StandIn, fake_vector

SHORT = Sampling(temperature=0.0, max_tokens=8)
QUESTION = (ChatTurn("system", "You answer briefly."), ChatTurn("user", "Name a colour."))


@pytest.fixture
async def patient_http() -> AsyncIterator[httpx.AsyncClient]:
    """A client for the real model, which may take a moment on a busy machine."""
    client = remote_http_client(connect_timeout=5.0, read_timeout=60.0)
    yield client
    await client.aclose()


async def test_streams_a_reply_from_a_real_server(llama_server: str, patient_http: httpx.AsyncClient) -> None:
    model = OpenAICompatibleChat("local-test", LLAMA_KEY, llama_server, patient_http)
    pieces, usages = await collect(model, QUESTION, SHORT)
    assert len(pieces) > 1 and "".join(pieces).strip()
    # llama-cpp-python's server (0.3.x) ignores stream_options and reports no usage when
    # streaming; a server that does must report the tokens it spent.
    for usage in usages:
        assert 0 < usage.completion_tokens <= SHORT.max_tokens and usage.prompt_tokens > 0


async def test_a_real_server_refuses_a_wrong_key(llama_server: str, patient_http: httpx.AsyncClient) -> None:
    model = OpenAICompatibleChat("local-test", "sk-not-the-key-31415", llama_server, patient_http)
    with pytest.raises(UpstreamFailed) as caught:
        await collect(model, QUESTION, SHORT)
    assert "refused the API key (HTTP 401)" in str(caught.value)
    assert "sk-not-the-key-31415" not in str(caught.value)


async def test_closing_early_leaves_a_real_server_ready(
    llama_server: str, patient_http: httpx.AsyncClient
) -> None:
    model = OpenAICompatibleChat("local-test", LLAMA_KEY, llama_server, patient_http)
    stream = model.stream(QUESTION, Sampling(temperature=0.0, max_tokens=16))
    assert isinstance(await anext(stream), str)
    await stream.aclose()
    pieces, _ = await collect(model, QUESTION, SHORT)
    assert pieces


async def test_reports_the_usage_the_provider_streams(standin: StandIn, http: httpx.AsyncClient) -> None:
    model = OpenAICompatibleChat("gpt-4o-mini", API_KEY, standin.url + "/v1", http, retry=QUICK_RETRY)
    pieces, usages = await collect(model)
    assert pieces == ["Hello", ", wor", "ld!"]
    assert usages == [Usage(prompt_tokens=21, completion_tokens=4)]


async def test_sends_what_chat_completions_expects(standin: StandIn, http: httpx.AsyncClient) -> None:
    model = OpenAICompatibleChat("gpt-4o-mini", API_KEY, standin.url + "/v1/", http, retry=QUICK_RETRY)
    await collect(model)
    [sent] = standin.received
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": turn.role, "content": turn.content} for turn in TURNS],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": SAMPLING.temperature,
        "top_p": SAMPLING.top_p,
        "max_tokens": SAMPLING.max_tokens,
        "stop": list(SAMPLING.stop),
    }  # no top_k: OpenAI's API has none and refuses unknown fields


async def test_sends_no_key_when_there_is_none(standin: StandIn, http: httpx.AsyncClient) -> None:
    model = OpenAICompatibleChat("llama3", None, standin.url + "/v1", http, retry=QUICK_RETRY)
    with pytest.raises(UpstreamFailed, match="refused the API key"):
        await collect(model)
    assert "authorization" not in standin.received[0].headers


async def test_embeds_in_order_whatever_order_the_reply_lists(
    standin: StandIn, http: httpx.AsyncClient
) -> None:
    embedder = OpenAICompatibleEmbedder(
        "nomic-embed-text", API_KEY, standin.url + "/v1", http, 8, QUICK_RETRY
    )
    texts = [f"text {number}" for number in range(130)]
    vectors = await embedder.embed(texts, "passage")
    assert vectors == [fake_vector(text, 8) for text in texts]
    first, second = standin.received  # in batches
    assert first.body == {"model": "nomic-embed-text", "input": texts[:128], "encoding_format": "float"}
    assert second.body["input"] == texts[128:]
    assert await embedder.embed([], "query") == [] and len(standin.received) == 2


async def test_refuses_vectors_of_the_wrong_size(standin: StandIn, http: httpx.AsyncClient) -> None:
    # Configured for 1536 numbers; the server's nomic-embed-text returns 8.
    embedder = OpenAICompatibleEmbedder(
        "nomic-embed-text", API_KEY, standin.url + "/v1", http, dimension=1536
    )
    assert embedder.dimension == 1536
    with pytest.raises(UpstreamFailed, match=r"returned embeddings of 8 numbers .* configured for 1536"):
        await embedder.embed(["rain"], "query")
    known = OpenAICompatibleEmbedder("text-embedding-3-small", API_KEY, standin.url + "/v1", http)
    assert len((await known.embed(["rain"], "query"))[0]) == known.dimension == 1536


async def test_learns_the_dimension_of_an_unknown_model(standin: StandIn, http: httpx.AsyncClient) -> None:
    embedder = OpenAICompatibleEmbedder("nomic-embed-text", API_KEY, standin.url + "/v1", http)
    with pytest.raises(Unavailable, match="configure its dimension"):
        _ = embedder.dimension
    await embedder.embed(["rain"], "query")
    assert embedder.dimension == 8


async def test_embedding_with_a_wrong_key_is_refused(standin: StandIn, http: httpx.AsyncClient) -> None:
    embedder = OpenAICompatibleEmbedder("nomic-embed-text", "sk-wrong-271828", standin.url + "/v1", http, 8)
    with pytest.raises(UpstreamFailed) as caught:
        await embedder.embed(["rain"], "query")
    assert "refused the API key" in str(caught.value) and "sk-wrong-271828" not in str(caught.value)
