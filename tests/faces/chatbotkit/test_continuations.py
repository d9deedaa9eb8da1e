"""ChatBotKit's continuations: a reply cut at the bot's reply limit ends with `end.reason:
"length"`, and with `limits.continuations` it is carried on by further model calls in the
same stream, stored whole. Driven by the real SDK and the real local model, greedily."""

import re
from typing import Any

import httpx
import pytest
from chatbotkit import ChatBotKit

from tests.faces.chatbotkit.conftest import STEADY_MODEL

BUDGET = 16  # the bot's reply limit, in tokens: far less than the question needs
LONG_QUESTION = "Count from 1 to 60, separated by commas."


def counts_on(cut: str, rest: str) -> bool:
    """Whether the reply counts from 1 up to the cut, and what followed the cut counts on from
    there, each number once and in order: a continuation that started over, skipped or repeated
    would not."""
    before = [int(number) for number in re.findall(r"\d+", cut)]
    after = [int(number) for number in re.findall(r"\d+", rest)]
    return (
        before == list(range(1, len(before) + 1))
        and len(after) >= 5
        and after == list(range(len(before) + 1, len(before) + 1 + len(after)))
    )


def auth(kit: ChatBotKit) -> dict[str, str]:
    return {"Authorization": f"Bearer {kit.options.token}"}


async def stored_messages(client: httpx.AsyncClient, kit: ChatBotKit, conversation_id: str) -> list[Any]:
    listed = await client.get(f"/v1/conversation/{conversation_id}/message/list", headers=auth(kit))
    return list(listed.json()["items"])


async def short_winded_bot(client: httpx.AsyncClient, kit: ChatBotKit) -> str:
    bot = await kit.bot.create({"name": "Counter", "model": STEADY_MODEL})
    # ChatBotKit's bot has no field for its reply limit; ChatAgent's has.
    limited = await client.put(
        f"/api/v1/bots/{bot.id}",
        headers=auth(kit),
        json={"llm_config": {"max_tokens": BUDGET}},
    )
    assert limited.status_code == 200, limited.text
    return bot.id


async def test_a_stored_reply_is_continued_past_the_bots_reply_limit(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot_id = await short_winded_bot(client, cbk)
    plain = await cbk.conversation.create({"botId": bot_id})
    cut = await cbk.conversation.complete(plain.id, {"text": LONG_QUESTION})
    assert cut.end.reason.value == "length"

    continued = await cbk.conversation.create({"botId": bot_id})
    request = {"text": LONG_QUESTION, "limits": {"continuations": 3}}
    events = [event async for event in cbk.conversation.complete(continued.id, request).stream()]
    kinds = [event.type.value for event in events]
    assert kinds[-3:] == ["message", "usage", "result"] and set(kinds[:-3]) == {"token"}
    result = events[-1].data
    # One stream: the tokens of every model call, and a result holding all of them.
    assert "".join(event.data.token for event in events[:-3]) == result.text
    assert events[-2].data.output_tokens_used > BUDGET
    # The first call is the reply that was cut before (same prompt, greedy); the rest go on
    # counting, rather than over again. Four calls of 16 tokens do not reach 60 either.
    assert result.text.startswith(cut.text)
    assert counts_on(cut.text, result.text[len(cut.text) :]) and result.end.reason.value == "length"

    stored = [(item["type"], item["text"]) for item in await stored_messages(client, cbk, continued.id)]
    assert stored == [("bot", result.text), ("user", LONG_QUESTION)]  # newest first


async def test_a_stateless_reply_is_continued_too(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    bot_id = await short_winded_bot(client, cbk)
    messages = [{"type": "user", "text": LONG_QUESTION}]
    cut = await cbk.conversation.complete(None, {"botId": bot_id, "messages": messages})
    assert cut.end.reason.value == "length"

    # Tool limits are accepted; they change nothing yet.
    limits = {"continuations": 2, "iterations": 1, "calls": 4}
    continued = await cbk.conversation.complete(
        None, {"botId": bot_id, "messages": messages, "limits": limits}
    )
    assert continued.text.startswith(cut.text) and counts_on(cut.text, continued.text[len(cut.text) :])
    assert continued.usage.token > cut.usage.token + BUDGET

    # A reply that ends by itself is not continued.
    short = [{"type": "user", "text": "What is 2 + 2? Answer with the number."}]
    done = await cbk.conversation.complete(None, {"botId": bot_id, "messages": short, "limits": limits})
    assert "4" in done.text and done.end.reason.value == "stop"


@pytest.mark.parametrize(
    "limits",
    [
        "3",
        0,
        -1,
        [1],
        {"continuations": "x"},
        {"continuations": 0},
        {"continuations": -1},
        {"continuations": 1.5},
        {"continuations": True},
        {"iterations": 0},
        {"calls": "many"},
    ],
)
async def test_limits_that_are_not_positive_integers_are_refused(
    client: httpx.AsyncClient, cbk: ChatBotKit, limits: object
) -> None:
    headers = auth(cbk)
    bot = await cbk.bot.create({"name": "Strict"})
    conversation = await cbk.conversation.create({"botId": bot.id})
    stored = await client.post(
        f"/v1/conversation/{conversation.id}/complete", headers=headers, json={"text": "hi", "limits": limits}
    )
    stateless = await client.post(
        "/v1/conversation/complete",
        headers=headers,
        json={"messages": [{"type": "user", "text": "hi"}], "limits": limits},
    )
    for refused in (stored, stateless):
        assert refused.status_code == 400
        body = refused.json()
        assert body["code"] == "BAD_REQUEST" and "limits" in body["message"]
    assert await stored_messages(client, cbk, conversation.id) == []
