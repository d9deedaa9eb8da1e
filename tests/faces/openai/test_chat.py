"""POST /v1/chat/completions through the `openai` client, answered by the real local model:
a bot by id or name (with its own system prompt), a raw local model, streamed or not, and
the tokens it spent recorded for the account."""

import asyncio

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.faces.openai.conftest import CHAT_MODEL, KeyHolder, new_key_holder, openai_client

HELLO = [{"role": "user", "content": "Hello, how are you?"}]


def assert_usage_adds_up(usage: openai.types.CompletionUsage | None) -> None:
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("by", ["id", "name"])
async def test_a_bot_answers_by_its_id_or_its_name(as_alice: AsyncOpenAI, alice: KeyHolder, by) -> None:
    model = alice.bot_id if by == "id" else alice.bot_name
    reply = await as_alice.chat.completions.create(model=model, messages=HELLO, max_tokens=8)
    assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
    assert reply.model == model and reply.created > 0
    [choice] = reply.choices
    assert choice.index == 0 and choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert_usage_adds_up(reply.usage)
    assert reply.usage is not None and reply.usage.completion_tokens <= 8
    extension = reply.model_extra["tertulia"]
    assert extension["bot_id"] == alice.bot_id and isinstance(extension["sources"], list)


async def test_the_bots_system_prompt_is_honoured(live_url, remote, as_alice: AsyncOpenAI) -> None:
    pong = await new_key_holder(
        remote,
        "pinger",
        bot_name="Pong",
        system_prompt="Whatever the user says, answer with the single word pong and nothing else.",
    )
    async with openai_client(live_url, pong.key) as as_pong:
        reply = await as_pong.chat.completions.create(model="Pong", messages=HELLO, max_tokens=8)
    assert "pong" in (reply.choices[0].message.content or "").lower()
    # The same question to the bare model gets an ordinary answer: the bot made the difference.
    plain = await as_alice.chat.completions.create(
        model=CHAT_MODEL, messages=HELLO, max_tokens=8, temperature=0
    )
    assert "pong" not in (plain.choices[0].message.content or "").lower()


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
async def test_a_reply_cut_at_the_token_limit_says_length(as_alice, alice, limit) -> None:
    reply = await as_alice.chat.completions.create(
        model=alice.bot_id,
        messages=[{"role": "user", "content": "Describe the sea at length."}],
        **{limit: 1},
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 1
    assert reply.choices[0].message.content


async def test_the_clients_earlier_turns_are_the_conversation(as_alice, alice) -> None:
    reply = await as_alice.chat.completions.create(
        model=alice.bot_id,
        messages=[
            {"role": "user", "content": "My name is Zoltan. Please remember it."},
            {"role": "assistant", "content": "Nice to meet you, Zoltan! I will remember your name."},
            {"role": "user", "content": "What is my name? Answer with the name only."},
        ],
    )
    assert "Zoltan" in (reply.choices[0].message.content or "")


async def test_a_streamed_reply_arrives_in_chunks_then_usage(as_alice, alice) -> None:
    stream = await as_alice.chat.completions.create(
        model=alice.bot_id,
        messages=[{"role": "user", "content": "Name three colours."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    first, usage_chunk = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    assert first.model_extra["tertulia"]["bot_id"] == alice.bot_id
    assert isinstance(first.model_extra["tertulia"]["sources"], list)
    assert len({chunk.id for chunk in chunks}) == 1 and first.id.startswith("chatcmpl-")
    assert all(chunk.object == "chat.completion.chunk" and chunk.model == alice.bot_id for chunk in chunks)

    with_choices = [chunk for chunk in chunks if chunk.choices]
    pieces = [chunk.choices[0].delta.content for chunk in with_choices if chunk.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces).strip()
    finishes = [chunk.choices[0].finish_reason for chunk in with_choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])

    # The usage chunk comes last, with no choices, and only it carries usage.
    assert usage_chunk.choices == []
    assert_usage_adds_up(usage_chunk.usage)
    assert all(chunk.usage is None for chunk in chunks[:-1])


@pytest.mark.parametrize("model", [CHAT_MODEL, f"local/{CHAT_MODEL}"])
async def test_a_raw_local_model_answers_without_a_bot(as_alice, model) -> None:
    reply = await as_alice.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France? One word."},
        ],
        max_tokens=6,
        temperature=0,
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.model == model and reply.model_extra["tertulia"]["bot_id"] is None
    assert_usage_adds_up(reply.usage)


async def test_a_raw_model_streams_without_usage_unless_asked(as_alice) -> None:
    stream = await as_alice.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Count to three."}], max_tokens=6, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].model_extra["tertulia"]["bot_id"] is None
    assert all(chunk.usage is None and len(chunk.choices) == 1 for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks).strip()


async def usage_by_bot(remote: httpx.AsyncClient, holder: KeyHolder) -> dict[str | None, dict[str, int]]:
    response = await remote.get("/api/v1/usage", headers=holder.user.headers)
    assert response.status_code == 200, response.text
    return {row.pop("bot_id"): row for row in response.json()["by_bot"]}


async def test_the_tokens_spent_are_recorded_for_the_account(as_alice, alice, remote) -> None:
    by_bot = await as_alice.chat.completions.create(model=alice.bot_id, messages=HELLO, max_tokens=4)
    raw = await as_alice.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=4)
    spent = await usage_by_bot(remote, alice)
    for bot_id, reply in ((alice.bot_id, by_bot), (None, raw)):
        assert reply.usage is not None
        assert spent[bot_id] == {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "total_tokens": reply.usage.total_tokens,
            "calls": 1,
        }


async def test_a_stream_the_reader_leaves_still_counts_its_tokens(as_alice, alice, remote) -> None:
    # Otherwise hanging up just before the end would be a way around the plan's token quota.
    stream = await as_alice.chat.completions.create(
        model=alice.bot_id,
        messages=[{"role": "user", "content": "Write a long story about a lighthouse."}],
        max_tokens=200,
        stream=True,
    )
    pieces = 0
    async for chunk in stream:
        pieces += bool(chunk.choices and chunk.choices[0].delta.content)
        if pieces == 3:
            break
    await stream.close()
    for _ in range(25):  # the server notices the reader left on its next write
        spent = await usage_by_bot(remote, alice)
        if alice.bot_id in spent:
            break
        await asyncio.sleep(0.2)
    assert alice.bot_id in spent, "a reply cut short by the reader was not counted"
    assert 3 <= spent[alice.bot_id]["completion_tokens"] < 200


@pytest.mark.parametrize("stop", [",", [",", ";"]])
async def test_a_stop_sequence_ends_the_reply_before_it(as_alice, stop) -> None:
    reply = await as_alice.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Count from 1 to 9, separated by commas, digits only."}],
        max_tokens=12,
        temperature=0,
        stop=stop,
    )
    content = reply.choices[0].message.content or ""
    assert content.strip() and "," not in content and "9" not in content
    assert reply.choices[0].finish_reason == "stop"
