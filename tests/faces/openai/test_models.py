"""GET /v1/models and /v1/models/{id} through the `openai` client: every bot of the key's
account is a model, the installed local models too, and nobody else's bots ever."""

import openai
import pytest

from tests.faces.openai.conftest import (
    CHAT_MODEL,
    EMBEDDING_MODEL,
    KeyHolder,
    create_bot,
    openai_client,
)


async def test_the_list_holds_my_bots_and_the_local_models(as_alice, alice: KeyHolder, bob, remote) -> None:
    second = await create_bot(remote, alice.user, "Second")
    models = (await as_alice.models.list()).data
    ids = [model.id for model in models]
    assert ids[:2] == [alice.bot_id, second]
    assert f"local/{CHAT_MODEL}" in ids and f"local/{EMBEDDING_MODEL}" in ids
    assert bob.bot_id not in ids
    assert all(model.object == "model" for model in models)
    mine = models[0]
    assert mine.owned_by == alice.user.id and mine.created > 0
    assert mine.model_extra["tertulia"]["kind"] == "bot" and mine.model_extra["tertulia"]["name"] == "Helper"


async def test_two_accounts_never_see_each_others_bots(live_url, alice, bob) -> None:
    async with openai_client(live_url, bob.key) as as_bob:
        ids = [model.id async for model in as_bob.models.list()]
    assert bob.bot_id in ids and alice.bot_id not in ids


@pytest.mark.parametrize("by", ["id", "name"])
async def test_a_bot_is_retrieved_by_its_id_or_name(as_alice, alice, by) -> None:
    model = await as_alice.models.retrieve(alice.bot_id if by == "id" else alice.bot_name)
    assert model.id == alice.bot_id and model.object == "model" and model.owned_by == alice.user.id


@pytest.mark.parametrize("name", [CHAT_MODEL, f"local/{CHAT_MODEL}", EMBEDDING_MODEL])
async def test_a_local_model_is_retrieved_by_its_bare_or_provider_name(as_alice, name) -> None:
    model = await as_alice.models.retrieve(name)
    assert model.id == name and model.owned_by == "local"


async def test_another_accounts_bot_is_not_found_like_a_missing_one(as_alice, bob) -> None:
    with pytest.raises(openai.NotFoundError) as theirs:
        await as_alice.models.retrieve(bob.bot_id)
    with pytest.raises(openai.NotFoundError) as missing:
        await as_alice.models.retrieve("bot_doesnotexist")
    assert theirs.value.code == missing.value.code == "model_not_found"
    assert theirs.value.body["message"].replace(bob.bot_id, "X") == missing.value.body["message"].replace(
        "bot_doesnotexist", "X"
    )
