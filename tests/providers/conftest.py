"""Fixtures for the remote providers: the stand-in server for the paid APIs, llama-cpp-python's
own OpenAI-compatible server running a packaged model, and the HTTP clients that reach them."""

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tertulia.core.errors import Unavailable
from tertulia.providers.anthropic import AnthropicChat
from tertulia.providers.base import ChatModel, ChatTurn, Sampling, Usage
from tertulia.providers.google import GeminiChat
from tertulia.providers.local_models import LOCAL_MODELS, model_file
from tertulia.providers.openai_compat import OpenAICompatibleChat
from tertulia.providers.remote_http import RetryPolicy, remote_http_client
from tests.live_server import free_port
from tests.providers.standins import API_KEY

SHORT_READ_TIMEOUT = 0.5  # seconds; for the tests of a provider that goes quiet
QUICK_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05)
LLAMA_KEY = "sk-llama-local-2b7e151628aed2a6"
# The smallest packaged model that is installed: SmolLM2 when present, else the default Qwen.
LLAMA_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct")
MODEL_CACHE = Path.home() / ".cache" / "tertulia" / "models"

TURNS = (
    ChatTurn("system", "You are terse."),
    ChatTurn("user", "Say hello."),
    ChatTurn("assistant", "Hello."),
    ChatTurn("user", "Again, to the world."),
)
SAMPLING = Sampling(temperature=0.2, top_p=0.9, top_k=20, max_tokens=16, stop=("\n\n",))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = remote_http_client(connect_timeout=5.0, read_timeout=10.0)
    yield client
    await client.aclose()


@pytest.fixture
async def impatient_http() -> AsyncIterator[httpx.AsyncClient]:
    """A client that gives up on a silent provider after SHORT_READ_TIMEOUT."""
    client = remote_http_client(connect_timeout=5.0, read_timeout=SHORT_READ_TIMEOUT)
    yield client
    await client.aclose()


PROVIDERS = ("anthropic", "gemini", "openai")
DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash", "openai": "gpt-4o-mini"}


def remote_chat(
    provider: str, url: str, http: httpx.AsyncClient, api_key: str | None = API_KEY, model: str | None = None
) -> ChatModel:
    """A chat model of `provider` pointed at the stand-in at `url`."""
    model_id = model or DEFAULT_MODELS[provider]
    if provider == "anthropic":
        return AnthropicChat(model_id, api_key, url, http, retry=QUICK_RETRY)
    if provider == "gemini":
        return GeminiChat(model_id, api_key, url, http, retry=QUICK_RETRY)
    return OpenAICompatibleChat(model_id, api_key, url + "/v1", http, retry=QUICK_RETRY)


async def collect(
    model: ChatModel, turns: Sequence[ChatTurn] = TURNS, sampling: Sampling = SAMPLING
) -> tuple[list[str], list[Usage]]:
    """Everything a stream yields, split into the text pieces and the usage reports."""
    pieces: list[str] = []
    usages: list[Usage] = []
    async for item in model.stream(turns, sampling):
        if isinstance(item, Usage):
            usages.append(item)
        else:
            assert not usages, "a Usage must be the very last item"
            pieces.append(item)
    return pieces, usages


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free port; yields its /v1 base URL."""
    with running_llama_server(tmp_path_factory.mktemp("llama")) as base_url:
        yield base_url


@contextmanager
def running_llama_server(folder: Path, alias: str = "local-test", context_tokens: int = 512) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server running the smallest packaged chat model
    under the name `alias` (it answers to any model name), with LLAMA_KEY as its API key and
    its log in `folder`; yields its /v1 base URL and stops it on exit."""
    path = _packaged_model()
    port = free_port()
    log = folder / "server.log"
    command = [
        sys.executable, "-m", "tests.providers.llama_server",
        "--model", str(path), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context_tokens), "--n_threads", "2",
        "--api_key", LLAMA_KEY,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, f"http://127.0.0.1:{port}/v1/models", log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _packaged_model() -> Path:
    for model_id in LLAMA_MODELS:
        try:
            return model_file(LOCAL_MODELS[model_id], MODEL_CACHE)
        except Unavailable:
            continue
    install = LOCAL_MODELS[LLAMA_MODELS[-1]].install_command
    pytest.skip(f"no packaged chat model is installed; install one with: {install}")


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    headers = {"Authorization": f"Bearer {LLAMA_KEY}"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the llama server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, headers=headers, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the llama server did not start in time:\n{log.read_text()[-2000:]}")
