"""The Python SDK example of chatagent-api.md ("SDK 示例"), word for word, against a real
server: only the base URL and the access token are this test's."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import serve_in_thread
from tests.providers.conftest import LLAMA_KEY, running_llama_server
from tests.sdk.conftest import server_settings, signed_up


@pytest.fixture(scope="module")
def openai_stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where this server's OpenAI is: llama-cpp-python's OpenAI-compatible server running the
    local model as "gpt-3.5-turbo"."""
    folder: Path = tmp_path_factory.mktemp("openai")
    with running_llama_server(folder, alias="gpt-3.5-turbo", context_tokens=2048) as base_url:
        yield base_url


@pytest.fixture
def server(database: Any, openai_stand_in: str) -> Iterator[str]:
    """The example's bot asks for OpenAI's gpt-3.5-turbo, and a server without an OpenAI key
    answers such a bot with a 503 (tests/faces/chatagent/test_chat.py). So this server's
    operator has configured OpenAI, as one would to run the example; OpenAI itself is on the
    internet, so its place is taken by a local server speaking OpenAI's real protocol with the
    real local model. The example then runs unchanged, and the answer comes back through
    Tertulia's OpenAI provider."""
    settings = server_settings(database, openai_api_key=LLAMA_KEY, openai_base_url=openai_stand_in)
    with serve_in_thread(settings) as address:
        yield address


def test_the_documents_python_sdk_example(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    with signed_up(f"http://{server}/api/v1", "reader") as account:
        access_token = account.access_token

    # ---- chatagent-api.md, "Python SDK", from here ----
    # fmt: off
    from chatagent import ChatAgentClient

    # 初始化客户端
    client = ChatAgentClient(
        base_url=f"http://{server}/api/v1",
        access_token=access_token
    )

    # 创建机器人
    bot = client.bots.create({
        "name": "我的机器人",
        "platform_type": "web",
        "llm_config": {
            "provider": "openai",
            "model": "gpt-3.5-turbo"
        }
    })

    # 创建对话
    conversation = client.conversations.create({
        "bot_id": bot["id"],
        "title": "测试对话"
    })

    # 发送消息
    response = client.conversations.send_message(
        conversation["id"],
        "你好，你能做什么？"
    )

    print(response["bot_response"]["content"])
    # fmt: on
    # ---- to here ----

    with client:
        printed = capsys.readouterr().out
        answer = response["bot_response"]["content"]
        assert answer.strip() and printed == answer + "\n"
        assert response["user_message"]["content"] == "你好，你能做什么？"
        # Answered by the bot's own provider and model, as the example configured it.
        assert response["bot_response"]["metadata"]["provider"] == "openai"
        assert response["bot_response"]["metadata"]["model"] == "gpt-3.5-turbo"
        assert conversation["title"] == "测试对话" and conversation["bot_id"] == bot["id"]
        stored = client.conversations.list_messages(conversation["id"])
        assert [message["id"] for message in stored["messages"]] == [
            response["user_message"]["id"],
            response["bot_response"]["id"],
        ]
