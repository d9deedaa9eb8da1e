"""A partner's `limits` on its users: at most so many conversations, datasets, records, files,
skillsets and abilities held, and so many messages and tokens a month; past one, the user gets
LIMITS_REACHED (429) and nothing is added. Driven by the real Python SDK."""

from typing import Any

import httpx
import pytest
from chatbotkit import APIError, ChatBotKit

from tests.conftest import AppFactory
from tests.faces.chatbotkit.conftest import STEADY_MODEL, sdk, token_for
from tests.providers.standins import API_KEY, StandIn


async def refused(call: Any) -> APIError:
    with pytest.raises(APIError) as raised:
        await call
    assert (raised.value.status_code, raised.value.code) == (429, "LIMITS_REACHED"), raised.value.message
    return raised.value


async def test_what_a_user_may_hold_is_limited_by_its_partner(cbk: ChatBotKit) -> None:
    limits = {
        "conversations": 1,
        "database": {"datasets": 1, "records": 2, "files": 1, "skillsets": 1, "abilities": 1},
    }
    child = await cbk.user.create({"name": "Shop", "limits": limits})
    assert (await cbk.user.fetch(child.id)).to_dict()["limits"] == limits
    shop = cbk.extend(run_as_user_id=child.id)

    bot = await shop.bot.create({"name": "Shop bot", "model": STEADY_MODEL})
    await shop.conversation.create({"botId": bot.id})
    error = await refused(shop.conversation.create({"botId": bot.id}))
    assert "at most 1 conversations" in error.message
    assert len((await shop.conversation.list()).items) == 1

    dataset = await shop.dataset.create({"name": "Prices"})
    await refused(shop.dataset.create({"name": "More"}))
    for text in ("Tea costs 2 euros.", "Coffee costs 3 euros."):
        await shop.dataset.record.create(dataset.id, {"text": text})
    await refused(shop.dataset.record.create(dataset.id, {"text": "Cake costs 4 euros."}))
    assert len((await shop.dataset.record.list(dataset.id)).items) == 2

    await shop.file.create({"name": "a.txt"})
    await refused(shop.file.create({"name": "b.txt"}))
    skillset = await shop.skillset.create({"name": "Tools"})
    await refused(shop.skillset.create({"name": "More tools"}))
    ability = {"name": "Look up", "description": "Looks up", "instruction": "Look it up."}
    await shop.skillset.ability.create(skillset.id, ability)
    await refused(shop.skillset.ability.create(skillset.id, ability))

    # The partner raises a limit: the user may add again. The partner itself is not limited.
    await cbk.user.update(child.id, {"limits": {**limits, "conversations": 2}})
    await shop.conversation.create({"botId": bot.id})
    partner_bot = await cbk.bot.create({"name": "Partner bot"})
    for _ in range(3):
        await cbk.conversation.create({"botId": partner_bot.id})


async def test_messages_a_month_are_limited(cbk: ChatBotKit) -> None:
    child = await cbk.user.create({"name": "Chatty", "limits": {"messages": 3}})
    shop = cbk.extend(run_as_user_id=child.id)
    bot = await shop.bot.create({"name": "Shop bot", "model": STEADY_MODEL})
    conversation = await shop.conversation.create({"botId": bot.id})
    reply = await shop.conversation.complete(conversation.id, {"text": "Say hi."})  # two messages
    assert reply.text
    # A question and its reply would be four: refused before the model is asked.
    await refused(shop.conversation.complete(conversation.id, {"text": "Again?"}))
    await shop.conversation.send(conversation.id, {"text": "One more."})  # the third
    await refused(shop.conversation.receive(conversation.id, {}))
    await refused(shop.conversation.send(conversation.id, {"text": "And another."}))


async def test_tokens_a_month_are_limited(make_client: AppFactory, standin: StandIn) -> None:
    client = await make_client(openai_api_key=API_KEY, openai_base_url=standin.url + "/v1")
    async with sdk(client, await token_for(client, "partner")) as partner:
        child = await partner.user.create({"name": "Spender", "limits": {"tokens": 30}})
        shop = partner.extend(run_as_user_id=child.id)
        bot = await shop.bot.create({"name": "Remote", "model": "gpt-4o"})
        conversation = await shop.conversation.create({"botId": bot.id})
        await shop.conversation.complete(conversation.id, {"text": "Hi"})  # 25 tokens of 30
        await shop.conversation.complete(conversation.id, {"text": "Hi"})  # 50: past the limit now
        error = await refused(shop.conversation.complete(conversation.id, {"text": "Hi"}))
        assert "tokens this month" in error.message
        messages = [{"type": "user", "text": "Hi"}]
        await refused(shop.conversation.complete(None, {"botId": bot.id, "messages": messages}))
        assert len(standin.received) == 2
        # Limits are the partner's to set: the user cannot lift its own.
        own = await partner.user.token.create(child.id, {"name": "own"})
    headers = {"Authorization": f"Bearer {own.token}"}
    lifted = await client.post(f"/v1/user/{child.id}/update", headers=headers, json={"limits": None})
    assert lifted.status_code == 404


@pytest.mark.parametrize(
    "limits",
    [
        "10",
        {"conversations": -1},
        {"conversations": 1.5},
        {"conversations": "many"},
        {"conversations": True},
        {"tokens": 10**13},
        {"database": {"bots": 2}},
        {"database": 3},
        {"sessions": 2},
    ],
)
async def test_limits_that_are_not_whole_numbers_are_refused(
    client: httpx.AsyncClient, cbk: ChatBotKit, limits: Any
) -> None:
    headers = {"Authorization": f"Bearer {cbk.options.token}"}
    made = await client.post("/v1/user/create", headers=headers, json={"name": "Odd", "limits": limits})
    assert made.status_code == 400 and made.json()["code"] == "BAD_REQUEST"
    assert "limits" in made.json()["message"]
    assert (await cbk.user.list()).items == []  # no user was made half-way
