"""ChatBotKit skillsets and abilities through the real Python SDK: kept, listed by cursor,
given to a bot, and out of every other account's reach."""

import httpx
import pytest
from chatbotkit import APIError, ChatBotKit

from tests.faces.chatbotkit.conftest import sdk, token_for


async def test_skillsets_and_their_abilities_are_kept_and_given_to_bots(cbk: ChatBotKit) -> None:
    skillset = await cbk.skillset.create({"name": "Support", "description": "helps", "meta": {"tier": 1}})
    fetched = await cbk.skillset.fetch(skillset.id)
    assert (fetched.name, fetched.description, fetched.meta) == ("Support", "helps", {"tier": 1})

    helper = await cbk.bot.create({"name": "Escalation"})
    made = [
        await cbk.skillset.ability.create(
            skillset.id,
            {"name": "Search", "description": "search the docs", "instruction": "search {query}"},
        ),
        await cbk.skillset.ability.create(skillset.id, {"linkedBotId": helper.id}),
    ]
    ability = await cbk.skillset.ability.fetch(skillset.id, made[0].id)
    assert (ability.name, ability.description, ability.instruction) == (
        "Search",
        "search the docs",
        "search {query}",
    )
    bare = await cbk.skillset.ability.fetch(skillset.id, made[1].id)
    assert (bare.name, bare.instruction, bare.linked_bot_id) == ("", "", helper.id)  # required on read

    await cbk.skillset.ability.update(
        skillset.id, made[0].id, {"instruction": "search {q}", "meta": {"$update": {"v": 2}}}
    )
    ability = await cbk.skillset.ability.fetch(skillset.id, made[0].id)
    assert ability.instruction == "search {q}" and ability.meta == {"v": 2} and ability.name == "Search"
    first = await cbk.skillset.ability.list(skillset.id, {"take": 1, "order": "asc"})
    assert [item.id for item in first.items] == [made[0].id] and first.cursor == made[0].id
    rest = await cbk.skillset.ability.list(skillset.id, {"take": 1, "order": "asc", "cursor": first.cursor})
    assert [item.id for item in rest.items] == [made[1].id]

    bot = await cbk.bot.create({"name": "Agent", "skillsetId": skillset.id})
    assert (await cbk.bot.fetch(bot.id)).skillset_id == skillset.id
    usage = await cbk.usage.fetch()
    assert (usage.database.skillsets, usage.database.abilities) == (1, 2)

    await cbk.skillset.ability.delete(skillset.id, made[1].id)
    assert [item.id for item in (await cbk.skillset.ability.list(skillset.id)).items] == [made[0].id]
    await cbk.skillset.update(skillset.id, {"name": "Support 2"})
    assert (await cbk.skillset.fetch(skillset.id)).name == "Support 2"

    await cbk.skillset.delete(skillset.id)  # the bot keeps going without it
    assert (await cbk.bot.fetch(bot.id)).skillset_id is None
    with pytest.raises(APIError) as gone:
        await cbk.skillset.ability.fetch(skillset.id, made[0].id)
    assert gone.value.code == "NOT_FOUND"
    assert (await cbk.skillset.list()).items == []


async def test_bad_skillset_input_is_a_bad_request(cbk: ChatBotKit) -> None:
    skillset = await cbk.skillset.create({})
    for bad in ({"name": 7}, {"instruction": ["x"]}, {"linkedBotId": 5}):
        with pytest.raises(APIError) as refused:
            await cbk.skillset.ability.create(skillset.id, bad)
        assert refused.value.code == "BAD_REQUEST", bad
    with pytest.raises(APIError) as missing:
        await cbk.skillset.ability.create(skillset.id, {"linkedBotId": "bot_nobody"})
    assert missing.value.code == "NOT_FOUND"
    with pytest.raises(APIError) as unknown:
        await cbk.bot.create({"name": "x", "skillsetId": "sks_nobody"})
    assert unknown.value.code == "NOT_FOUND"


async def test_another_accounts_skillsets_cannot_be_reached(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    skillset = await cbk.skillset.create({"name": "Mine"})
    ability = await cbk.skillset.ability.create(skillset.id, {"name": "a"})
    async with sdk(client, await token_for(client, "stranger")) as stranger:
        assert (await stranger.skillset.list()).items == []
        for attempt in (
            stranger.skillset.fetch(skillset.id),
            stranger.skillset.update(skillset.id, {"name": "Theirs"}),
            stranger.skillset.delete(skillset.id),
            stranger.skillset.ability.list(skillset.id),
            stranger.skillset.ability.fetch(skillset.id, ability.id),
            stranger.skillset.ability.create(skillset.id, {"name": "b"}),
            stranger.skillset.ability.delete(skillset.id, ability.id),
            stranger.bot.create({"name": "x", "skillsetId": skillset.id}),
        ):
            with pytest.raises(APIError) as refused:
                await attempt
            assert refused.value.code == "NOT_FOUND"
        # Their own bot cannot be linked into my skillset, nor mine into theirs.
        own = await stranger.skillset.create({})
        mine_bot = await cbk.bot.create({"name": "mine"})
        with pytest.raises(APIError):
            await stranger.skillset.ability.create(own.id, {"linkedBotId": mine_bot.id})
    assert (await cbk.skillset.fetch(skillset.id)).name == "Mine"
    assert len((await cbk.skillset.ability.list(skillset.id)).items) == 1
