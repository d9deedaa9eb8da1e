"""AnthropicChat against a stand-in speaking Anthropic's Messages API."""

import httpx

from tertulia.providers.anthropic import AnthropicChat
from tertulia.providers.base import ChatTurn, Sampling, Usage
from tests.providers.conftest import QUICK_RETRY, SAMPLING, collect
from tests.providers.standins import API_KEY, StandIn


def claude(url: str, http: httpx.AsyncClient) -> AnthropicChat:
    return AnthropicChat("claude-sonnet-4-5", API_KEY, url, http, retry=QUICK_RETRY)


async def test_streams_the_reply_then_the_usage(standin: StandIn, http: httpx.AsyncClient) -> None:
    pieces, usages = await collect(claude(standin.url, http))
    assert pieces == ["Hello", ", wor", "ld!"]
    # 16 fresh input tokens and 5 read from the prompt cache: the model read 21.
    assert usages == [Usage(prompt_tokens=21, completion_tokens=4)]


async def test_sends_what_the_messages_api_expects(standin: StandIn, http: httpx.AsyncClient) -> None:
    turns = (
        ChatTurn("system", "You are terse."),
        ChatTurn("user", "Say hello."),
        ChatTurn("assistant", "Hello."),
        ChatTurn("system", "Answer in English."),
        ChatTurn("user", "Again."),
    )
    await collect(claude(standin.url, http), turns)
    [sent] = standin.received
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": SAMPLING.max_tokens,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again."},
        ],
        "stream": True,
        "temperature": SAMPLING.temperature,
        "top_p": SAMPLING.top_p,
        "top_k": SAMPLING.top_k,
        "stop_sequences": list(SAMPLING.stop),
    }


async def test_keeps_sampling_within_what_claude_accepts(standin: StandIn, http: httpx.AsyncClient) -> None:
    # Newer Claude models refuse temperature and top_p together, and temperature above 1.
    await collect(claude(standin.url, http), (ChatTurn("user", "Hi"),), Sampling(temperature=1.5, top_p=1.0))
    [sent] = standin.received
    assert sent.body["temperature"] == 1.0
    assert "top_p" not in sent.body and "system" not in sent.body and "stop_sequences" not in sent.body


async def test_counts_tokens_without_a_tokenizer(http: httpx.AsyncClient) -> None:
    model = claude("http://127.0.0.1:9", http)
    assert model.model_id == "claude-sonnet-4-5" and model.context_tokens == 200_000
    assert await model.count_tokens("twelve bytes") == 3
    assert await model.count_prompt_tokens([ChatTurn("user", "twelve bytes")]) > 3
