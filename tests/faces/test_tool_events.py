"""A tool the bot used shows in every face's own stream: an `activity` message in
ChatBotKit's JSONL (read by the real SDK), a `tool` event in Agent v2's server-sent events;
and a stateless reply (ChatBotKit's conversation/complete with a bot) uses tools too."""

from collections.abc import AsyncIterator

import httpx
import pytest
from chatbotkit import ChatBotKit

from tests.faces.agentv2.test_agentv2 import events_of
from tests.faces.chatbotkit.conftest import STEADY_MODEL, sdk, token_for
from tests.faces.chatbotkit.test_continuations import auth

QUESTION = "How much is 17 times 23?"


@pytest.fixture
async def cbk(client: httpx.AsyncClient) -> AsyncIterator[ChatBotKit]:
    async with sdk(client, await token_for(client, "cbk")) as kit:
        yield kit


async def calculator_bot(client: httpx.AsyncClient, kit: ChatBotKit) -> str:
    bot = await kit.bot.create({"name": "Sums", "model": STEADY_MODEL})
    installed = await client.post(f"/api/v1/bots/{bot.id}/plugins/calculator", headers=auth(kit), json={})
    assert installed.status_code == 200, installed.text
    return bot.id


async def test_chatbotkit_streams_the_tool_as_an_activity_message(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot_id = await calculator_bot(client, cbk)
    conversation = await cbk.conversation.create({"botId": bot_id})

    events = [
        event async for event in cbk.conversation.complete(conversation.id, {"text": QUESTION}).stream()
    ]

    kinds = [event.type.value for event in events]
    assert kinds[0] == "message" and kinds[-3:] == ["message", "usage", "result"], kinds
    activity = events[0].data
    assert activity.type.value == "activity" and activity.text.startswith("calculator(")
    assert activity.meta["toolCall"]["result"]["result"] == "391"
    assert "391" in events[-1].data.text


async def test_a_stateless_chatbotkit_reply_uses_the_bots_tools(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot_id = await calculator_bot(client, cbk)

    events = [
        event
        async for event in cbk.conversation.complete(
            None, {"botId": bot_id, "messages": [{"type": "user", "text": QUESTION}]}
        ).stream()
    ]

    activity = next(event.data for event in events if event.type.value == "message")
    assert activity.type.value == "activity" and activity.meta["toolCall"]["name"] == "calculator"
    assert "391" in events[-1].data.text


async def test_agent_v2_streams_the_tool_as_a_tool_event(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    bot_id = await calculator_bot(client, cbk)

    streamed = await client.post(
        f"/api/v2/agent/{bot_id}/chat",
        headers={**auth(cbk), "Accept": "text/event-stream"},
        json={"query": QUESTION},
    )

    assert streamed.status_code == 200, streamed.text
    events = events_of(streamed.text)
    kinds = [kind for kind, _data in events]
    assert kinds[0] == "tool" and kinds[-1] == "done", kinds
    tool = events[0][1]
    assert tool["name"] == "calculator" and tool["result"]["result"] == "391"
    assert "391" in events[-1][1]["answer"]
