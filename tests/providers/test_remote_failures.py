"""How every remote provider fails: the same core error, a clear message, never the key.

Each case runs against the stand-in of each provider's real API (Anthropic, Gemini, OpenAI)."""

import asyncio

import httpx
import pytest

from tertulia.core.errors import TertuliaError, Unavailable, UpstreamFailed
from tertulia.providers import anthropic, google, openai_compat
from tests.live_server import free_port
from tests.providers.conftest import PROVIDERS, SAMPLING, SHORT_READ_TIMEOUT, TURNS, collect, remote_chat
from tests.providers.standins import API_KEY, StandIn

NAMES = {"anthropic": anthropic.PROVIDER, "gemini": google.PROVIDER, "openai": openai_compat.PROVIDER}
WRONG_KEY = "sk-wrong-key-9876543210"

pytestmark = pytest.mark.parametrize("provider", PROVIDERS)


def assert_clear(error: TertuliaError, provider: str, *secrets: str) -> str:
    """The message names the provider and holds none of the keys; returns it."""
    message = str(error)
    assert NAMES[provider] in message
    for secret in (API_KEY, WRONG_KEY, *secrets):
        assert secret not in message
        assert secret not in repr(error.details)
    return message


async def test_a_wrong_key_is_refused_plainly(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    model = remote_chat(provider, standin.url, http, api_key=WRONG_KEY)
    with pytest.raises(UpstreamFailed) as caught:
        await collect(model)
    assert type(caught.value) is UpstreamFailed
    assert "refused the API key" in assert_clear(caught.value, provider)
    assert len(standin.received) == 1  # a refused key is not tried again


async def test_an_unknown_model_is_named(provider: str, standin: StandIn, http: httpx.AsyncClient) -> None:
    standin.reset(mode="unknown_model")
    model = remote_chat(provider, standin.url, http, model="no-such-model-7")
    with pytest.raises(UpstreamFailed) as caught:
        await collect(model)
    message = assert_clear(caught.value, provider)
    assert "'no-such-model-7'" in message and "404" in message
    assert len(standin.received) == 1


async def test_a_rejected_request_quotes_the_provider_without_the_key(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode="rejected")  # the provider's message quotes the key it was sent
    with pytest.raises(UpstreamFailed) as caught:
        await collect(remote_chat(provider, standin.url, http))
    message = assert_clear(caught.value, provider)
    assert "HTTP 400" in message and "this request cannot be served with key [api key]" in message


async def test_a_rate_limit_is_waited_out_as_the_provider_asks(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode="rate_limited_once", retry_after=1)
    pieces, _ = await collect(remote_chat(provider, standin.url, http))
    assert "".join(pieces) == "Hello, world!"
    first, second = standin.received
    # The retry policy's own backoff is 10-50 ms: a second-long gap is the provider's ask.
    assert second.at - first.at >= 0.9


async def test_a_lasting_rate_limit_is_unavailable(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode="rate_limited", retry_after=0)
    with pytest.raises(Unavailable) as caught:
        await collect(remote_chat(provider, standin.url, http))
    assert "rate limited by provider" in assert_clear(caught.value, provider)
    assert len(standin.received) == 3


async def test_a_lasting_server_error_fails_after_three_attempts(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode="server_error")
    with pytest.raises(UpstreamFailed) as caught:
        await collect(remote_chat(provider, standin.url, http))
    message = assert_clear(caught.value, provider)
    assert "HTTP 500" in message and "after 3 attempts" in message
    assert len(standin.received) == 3


async def test_a_silent_provider_times_out(
    provider: str, standin: StandIn, impatient_http: httpx.AsyncClient
) -> None:
    standin.reset(mode="slow", stall=5)
    with pytest.raises(UpstreamFailed) as caught:
        await collect(remote_chat(provider, standin.url, impatient_http))
    assert f"timed out after {SHORT_READ_TIMEOUT:g} s" in assert_clear(caught.value, provider)
    assert len(standin.received) == 3


async def test_a_stream_that_stalls_is_not_retried(
    provider: str, standin: StandIn, impatient_http: httpx.AsyncClient
) -> None:
    standin.reset(mode="stall", stall=5)
    pieces = []
    with pytest.raises(UpstreamFailed) as caught:
        async for piece in remote_chat(provider, standin.url, impatient_http).stream(TURNS, SAMPLING):
            pieces.append(piece)
    assert pieces[0] == "Hello"
    assert f"timed out after {SHORT_READ_TIMEOUT:g} s" in assert_clear(caught.value, provider)
    assert len(standin.received) == 1  # pieces were handed out: a retry would repeat them


@pytest.mark.parametrize("mode", ["garbage", "truncated", "cut_off"])
async def test_a_malformed_stream_is_reported(
    provider: str, mode: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode=mode)
    with pytest.raises(UpstreamFailed) as caught:
        await collect(remote_chat(provider, standin.url, http))
    assert "malformed reply" in assert_clear(caught.value, provider)
    assert len(standin.received) == 1


async def test_an_error_inside_the_stream_is_reported(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode="error_event")
    with pytest.raises(TertuliaError) as caught:
        await collect(remote_chat(provider, standin.url, http))
    message = assert_clear(caught.value, provider)
    assert "failed mid-reply" in message
    if provider == "openai":
        assert type(caught.value) is UpstreamFailed and "had an error" in message
    else:  # Anthropic's and Gemini's events say "overloaded": a passing condition
        assert type(caught.value) is Unavailable and "verloaded" in message


async def test_closing_the_stream_hangs_up_on_the_provider(
    provider: str, standin: StandIn, http: httpx.AsyncClient
) -> None:
    standin.reset(mode="endless")
    stream = remote_chat(provider, standin.url, http).stream(TURNS, SAMPLING)
    assert [await anext(stream), await anext(stream)] == ["tick ", "tick "]
    await stream.aclose()
    assert await asyncio.to_thread(standin.disconnected.wait, 5)
    assert standin.frames_sent < 100  # of 400: the provider stopped generating


async def test_an_unreachable_provider_is_unavailable(provider: str, http: httpx.AsyncClient) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on
    with pytest.raises(Unavailable) as caught:
        await collect(remote_chat(provider, nobody, http))
    assert "could not reach" in assert_clear(caught.value, provider)
