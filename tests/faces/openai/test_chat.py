"""POST /v1/chat/completions through the `openai` client, answered by the real local model:
a bot by id or name (with its own system prompt), a raw local model, streamed or not, and
the tokens it spent recorded for the account."""

import openai
import pytest
from openai import AsyncOpenAI

from tertulia.core.principal import Principal
from tertulia.core.usage import usage_report
from tertulia.store.tables import Account
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
    plain = await as_alice.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=8, temperature=0)
    assert "pong" not in (plain.choices[0].message.content or "").lower()


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
async def test_a_reply_cut_at_the_token_limit_says_length(as_alice, alice, limit) -> None:
    reply = await as_alice.chat.completions.create(
        model=alice.bot_id, messages=[{"role": "user", "content": "Describe the sea at length."}], **{limit: 1}
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


async def test_the_tokens_spent_are_recorded_for_the_account(as_alice, alice, core_database) -> None:
    by_bot = await as_alice.chat.completions.create(model=alice.bot_id, messages=HELLO, max_tokens=4)
    raw = await as_alice.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=4)
    async with core_database.session() as session:
        account = await session.get(Account, alice.user.id)
        assert account is not None
        report = await usage_report(session, Principal(account))
    for bot_id, reply in ((alice.bot_id, by_bot), (None, raw)):
        spent = report.by_bot[bot_id]
        assert reply.usage is not None and spent.calls == 1
        assert (spent.prompt_tokens, spent.completion_tokens) == (
            reply.usage.prompt_tokens,
            reply.usage.completion_tokens,
        )
    assert report.total.total_tokens == by_bot.usage.total_tokens + raw.usage.total_tokens
