"""ChatBotKit sessions: short-lived tokens for one conversation (made for it, or with a new
conversation from a bot) and for a sub-account, each refused outside what it was made for;
and acting as a sub-account named by its email."""

import anyio
import httpx
import pytest
from chatbotkit import APIError, ChatBotKit

from tests.faces.chatbotkit.conftest import STEADY_MODEL, sdk, token_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_conversation_session_chats_in_that_conversation_only(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot = await cbk.bot.create({"name": "Greeter", "model": STEADY_MODEL})
    mine = (await cbk.conversation.create({"botId": bot.id})).id
    other = (await cbk.conversation.create({"botId": bot.id})).id
    made = await client.post(
        f"/api/v1/conversation/{mine}/session/create",
        headers=bearer(cbk.options.token),
        json={"durationInSeconds": 1800},
    )
    assert made.status_code == 200, made.text
    session = made.json()
    assert session["id"] == mine and session["expiresAt"] > 1_700_000_000_000

    async with sdk(client, session["token"]) as visitor:
        answer = await visitor.conversation.complete(mine, {"text": "Say hello."})
        assert answer.text
        sent = await visitor.conversation.send(mine, {"text": "Thanks!"})
        assert sent.id
        for refused in (
            visitor.conversation.complete(other, {"text": "hi"}),
            visitor.conversation.fetch(mine),
            visitor.conversation.list(),
            visitor.bot.list(),
        ):
            with pytest.raises(APIError) as outside:
                await refused
            assert outside.value.code == "NOT_AUTHORIZED"
    escalate = await client.post("/api/v1/token/create", headers=bearer(session["token"]), json={})
    assert escalate.json()["code"] == "NOT_AUTHORIZED"
    # Sessions are not keys: the account's token list does not show them.
    listed = (await client.get("/api/v1/token/list", headers=bearer(cbk.options.token))).json()
    assert all(item["id"] != session["id"] for item in listed["items"]) and len(listed["items"]) == 1

    bad = await client.post(
        f"/v1/conversation/{mine}/session/create",
        headers=bearer(cbk.options.token),
        json={"durationInSeconds": "1h"},
    )
    assert bad.status_code == 400 and bad.json()["code"] == "BAD_REQUEST"
    too_long = await client.post(
        f"/v1/conversation/{mine}/session/create",
        headers=bearer(cbk.options.token),
        json={"durationInSeconds": 10 * 86_400},
    )
    assert too_long.status_code == 400


async def test_a_session_ends_when_its_time_is_up(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    bot = await cbk.bot.create({"name": "Brief"})
    conversation = (await cbk.conversation.create({"botId": bot.id})).id
    session = (
        await client.post(
            f"/v1/conversation/{conversation}/session/create",
            headers=bearer(cbk.options.token),
            json={"durationInSeconds": 1},
        )
    ).json()
    await anyio.sleep(1.5)
    late = await client.post(
        f"/v1/conversation/{conversation}/send", headers=bearer(session["token"]), json={"text": "hi"}
    )
    assert late.status_code == 401 and late.json()["code"] == "NOT_AUTHENTICATED"


async def test_a_bot_session_starts_a_conversation_with_its_contact(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot = await cbk.bot.create({"name": "Front desk", "model": STEADY_MODEL})
    made = await client.post(
        f"/api/v1/bot/{bot.id}/session/create",
        headers=bearer(cbk.options.token),
        json={
            "contact": {"name": "Ana", "email": "ana@example.com"},
            "messages": [{"type": "bot", "text": "Welcome! How can I help?"}],
            "meta": {"page": "/pricing"},
        },
    )
    assert made.status_code == 200, made.text
    session = made.json()
    assert session["id"] == bot.id and session["messages"] == [
        {"type": "bot", "text": "Welcome! How can I help?"}
    ]
    conversation = await cbk.conversation.fetch(session["conversationId"])
    assert conversation.bot_id == bot.id and conversation.meta == {"page": "/pricing"}
    contact = await cbk.contact.fetch(conversation.contact_id)
    assert (contact.name, contact.email, contact.fingerprint) == ("Ana", "ana@example.com", "ana@example.com")

    headers = bearer(session["token"])
    sent = await client.post(
        f"/v1/conversation/{session['conversationId']}/send", headers=headers, json={"text": "Hi, I am Ana."}
    )
    assert sent.status_code == 200
    received = await client.post(
        f"/v1/conversation/{session['conversationId']}/receive", headers=headers, json={}
    )
    assert received.status_code == 200 and received.json()["text"]
    # A second session for the same contact finds the contact again.
    again = (
        await client.post(
            f"/v1/bot/{bot.id}/session/create",
            headers=bearer(cbk.options.token),
            json={"contact": {"email": "ana@example.com"}},
        )
    ).json()
    assert (await cbk.conversation.fetch(again["conversationId"])).contact_id == contact.id

    async with sdk(client, await token_for(client, "stranger")) as stranger:
        theirs = await client.post(
            f"/v1/bot/{bot.id}/session/create", headers=bearer(stranger.options.token), json={}
        )
        assert theirs.status_code == 404
        theirs = await client.post(
            f"/v1/conversation/{session['conversationId']}/session/create",
            headers=bearer(stranger.options.token),
            json={},
        )
        assert theirs.status_code == 404


async def test_a_user_session_acts_as_the_sub_account_within_its_routes(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    child = await cbk.user.create({"name": "Shop", "email": "shop@example.com"})
    async with ChatBotKit(
        token=cbk.options.token,
        base_url="http://testserver",
        transport=client._transport,
        run_as_user_id=child.id,
        timeout=60,
    ) as as_child:
        child_bot = await as_child.bot.create({"name": "Shop bot"})

    made = await client.post(
        f"/api/v1/partner/user/{child.id}/session/create",
        headers=bearer(cbk.options.token),
        json={"durationInSeconds": 600, "config": {"allowedRoutes": ["bot/**"]}},
    )
    assert made.status_code == 200, made.text
    async with sdk(client, made.json()["token"]) as session:
        assert [item.id for item in (await session.bot.list()).items] == [child_bot.id]
        with pytest.raises(APIError) as outside:
            await session.conversation.list()
        assert outside.value.code == "NOT_AUTHORIZED"
    # Without routes the session may do anything the sub-account may (and only as it).
    whole = (
        await client.post(
            f"/api/v1/user/{child.id}/session/create", headers=bearer(cbk.options.token), json={}
        )
    ).json()
    async with sdk(client, whole["token"]) as session:
        assert [item.id for item in (await session.bot.list()).items] == [child_bot.id]
        assert (await session.conversation.list()).items == []

    async with sdk(client, await token_for(client, "other-partner")) as other:
        theirs = await client.post(
            f"/api/v1/user/{child.id}/session/create", headers=bearer(other.options.token), json={}
        )
        assert theirs.status_code == 404


async def test_a_partner_names_its_sub_account_by_email(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    child = await cbk.user.create({"name": "Bakery", "email": "Bakery@Example.com"})
    made = await client.post(
        "/v1/bot/create",
        headers={**bearer(cbk.options.token), "X-RunAs-Child-User-Email": "bakery@example.com"},
        json={"name": "Bakery bot"},
    )
    assert made.status_code == 200
    async with ChatBotKit(
        token=cbk.options.token,
        base_url="http://testserver",
        transport=client._transport,
        run_as_user_id=child.id,
        timeout=60,
    ) as as_child:
        assert [item.id for item in (await as_child.bot.list()).items] == [made.json()["id"]]
    assert (await cbk.bot.list()).items == []

    async with sdk(client, await token_for(client, "elsewhere")) as other:
        stranger = await client.get(
            "/v1/bot/list",
            headers={**bearer(other.options.token), "X-RunAs-Child-User-Email": "bakery@example.com"},
        )
        assert stranger.status_code == 401 and stranger.json()["code"] == "NOT_AUTHENTICATED"
