"""Failures as the `openai` client raises them, each in OpenAI's error shape
{"error": {"message", "type", "param", "code"}}: bad keys, unknown or foreign models,
invalid bodies, and keys limited to a bot or to some scopes."""

from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.faces.openai.conftest import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    KeyHolder,
    assert_openai_shape,
    create_bot,
    create_key,
    openai_client,
)

HELLO = [{"role": "user", "content": "Hello?"}]


@pytest.mark.parametrize("key", ["sk-not-a-tertulia-key", "tk_unknown", "not.a.jwt"])
def test_a_bad_key_is_an_authentication_error(live_url: str, key: str) -> None:
    with OpenAI(api_key=key, base_url=f"{live_url}/v1", max_retries=0, timeout=60) as client:
        for call in (
            lambda: client.models.list(),
            lambda: client.chat.completions.create(model=CHAT_MODEL, messages=HELLO),
            lambda: client.embeddings.create(model=EMBEDDING_MODEL, input="hola"),
        ):
            with pytest.raises(openai.AuthenticationError) as refused:
                call()
            assert refused.value.status_code == 401
            body = assert_openai_shape(refused.value)
            assert body["type"] == "authentication_error" and body["code"] == "invalid_api_key"


def test_no_key_at_all_is_a_401_in_openai_shape(live_url: str) -> None:
    response = httpx.post(f"{live_url}/v1/chat/completions", json={"model": CHAT_MODEL, "messages": HELLO})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unknown_model_is_model_not_found(as_alice: AsyncOpenAI, stream: bool) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await as_alice.chat.completions.create(model="gpt-imaginary", messages=HELLO, stream=stream)
    body = assert_openai_shape(missing.value)
    assert body["code"] == "model_not_found" and body["type"] == "invalid_request_error"
    assert "gpt-imaginary" in body["message"]


async def test_another_accounts_bot_is_indistinguishable_from_none(as_alice, bob: KeyHolder) -> None:
    with pytest.raises(openai.NotFoundError) as theirs:
        await as_alice.chat.completions.create(model=bob.bot_id, messages=HELLO)
    with pytest.raises(openai.NotFoundError) as nobodys:
        await as_alice.chat.completions.create(model="bot_0000000000", messages=HELLO)
    with pytest.raises(openai.NotFoundError) as by_name:
        await as_alice.embeddings.create(model=bob.bot_id, input="hola")
    mine, none = assert_openai_shape(theirs.value), assert_openai_shape(nobodys.value)
    assert {**mine, "message": mine["message"].replace(bob.bot_id, "X")} == {
        **none,
        "message": none["message"].replace("bot_0000000000", "X"),
    }
    assert assert_openai_shape(by_name.value)["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("change", "param", "says"),
    [
        pytest.param({"temperature": 5}, "temperature", "less than or equal to 2", id="temperature"),
        pytest.param({"top_p": 1.5}, "top_p", "less than or equal to 1", id="top_p"),
        pytest.param({"max_tokens": 0}, "max_tokens", "greater than or equal to 1", id="max_tokens"),
        pytest.param({"messages": []}, "messages", "at least 1 item", id="no-messages"),
        pytest.param(
            {"messages": [{"role": "wizard", "content": "hi"}]},
            "messages.0.role",
            "'user'",
            id="unknown-role",
        ),
        pytest.param(
            {"messages": [*HELLO, {"role": "assistant", "content": "Hi!"}]},
            "messages",
            "the last message must be the user's",
            id="last-not-user",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "   "}]}, "content", "the message is empty", id="blank"
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "nul \x00 inside"}]},
            "messages",
            "messages.0.content contains a NUL character",
            id="nul",
        ),
        pytest.param({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4 items", id="too-many-stops"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_an_invalid_request_is_a_bad_request(as_alice, alice, change, param, says, stream) -> None:
    request: dict[str, Any] = {"model": alice.bot_id, "messages": HELLO, **change}
    with pytest.raises(openai.BadRequestError) as refused:
        await as_alice.chat.completions.create(**request, stream=stream)
    body = assert_openai_shape(refused.value)
    assert refused.value.status_code == 400 and body["type"] == "invalid_request_error"
    assert body["param"] == param
    assert says in body["message"]  # what is wrong, not just "invalid"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": ""}, "input.0"),
        ({"input": []}, "input"),
        ({"input": "nul \x00"}, "input"),
        ({"dimensions": 12}, "dimensions"),
    ],
    ids=["empty", "no-inputs", "nul", "dimensions"],
)
async def test_an_invalid_embedding_request_is_a_bad_request(as_alice, change, param) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await as_alice.embeddings.create(**{"model": EMBEDDING_MODEL, "input": "hola", **change})
    assert assert_openai_shape(refused.value)["param"] == param


async def test_a_chat_model_is_not_an_embedding_model(as_alice) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await as_alice.embeddings.create(model=CHAT_MODEL, input="hola")
    assert assert_openai_shape(missing.value)["code"] == "model_not_found"


async def test_a_key_bound_to_one_bot_reaches_no_other(live_url, remote, alice: KeyHolder) -> None:
    other = await create_bot(remote, alice.user, "Other")
    bound = await create_key(remote, alice.user, bot_id=alice.bot_id)
    async with openai_client(live_url, bound) as as_bound:
        listed = [model.id async for model in as_bound.models.list()]
        assert alice.bot_id in listed and other not in listed
        for name in (other, "Other"):
            with pytest.raises(openai.NotFoundError) as refused:
                await as_bound.chat.completions.create(model=name, messages=HELLO, max_tokens=1)
            assert assert_openai_shape(refused.value)["code"] == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            await as_bound.models.retrieve(other)
        own = await as_bound.chat.completions.create(model=alice.bot_id, messages=HELLO, max_tokens=1)
    assert own.model_extra["tertulia"]["bot_id"] == alice.bot_id


async def test_a_key_without_the_bots_scope_cannot_use_a_bot(live_url, remote, alice: KeyHolder) -> None:
    scoped = await create_key(remote, alice.user, scopes=["models:read"])
    async with openai_client(live_url, scoped) as as_scoped:
        for stream in (False, True):
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await as_scoped.chat.completions.create(
                    model=alice.bot_id, messages=HELLO, max_tokens=1, stream=stream
                )
            body = assert_openai_shape(refused.value)
            assert body["type"] == "permission_error" and "bots:read" in body["message"]
        # What the scope does allow still works: a raw model.
        raw = await as_scoped.chat.completions.create(model=CHAT_MODEL, messages=HELLO, max_tokens=1)
    assert raw.choices[0].message.content


async def test_a_key_without_the_bots_scope_cannot_read_a_bot_as_a_model(
    live_url, remote, alice: KeyHolder
) -> None:
    # Listing refuses such a key (the catalog needs bots:read); reading one bot must too,
    # or the key learns the bot's name and description the scope withholds.
    scoped = await create_key(remote, alice.user, scopes=["models:read"])
    async with openai_client(live_url, scoped) as as_scoped:
        with pytest.raises(openai.PermissionDeniedError):
            await as_scoped.models.list()
        with pytest.raises(openai.PermissionDeniedError):
            await as_scoped.models.retrieve(alice.bot_id)


@pytest.mark.parametrize("model", [CHAT_MODEL, EMBEDDING_MODEL])
async def test_a_key_bound_to_one_bot_cannot_use_raw_models(
    live_url, remote, alice: KeyHolder, model
) -> None:
    # "bot_id set means the credential works for that one bot only" (core.principal): a
    # widget's key must not become a general-purpose endpoint for the account's models.
    bound = await create_key(remote, alice.user, bot_id=alice.bot_id)
    async with openai_client(live_url, bound) as as_bound:
        with pytest.raises(openai.APIStatusError) as refused:
            if model == CHAT_MODEL:
                await as_bound.chat.completions.create(model=model, messages=HELLO, max_tokens=1)
            else:
                await as_bound.embeddings.create(model=model, input="hola")
    assert refused.value.status_code in (403, 404)
    assert_openai_shape(refused.value)
