"""The ChatBotKit face driven by the real ChatBotKit Python SDK (`chatbotkit`): bots,
conversations, complete with and without streaming, send/receive, cursor pages, usage and
errors — every response parsed by the SDK's own strict parsers."""

import json

import httpx
import pytest
from chatbotkit import APIError, ChatBotKit

from tests.conftest import AppFactory
from tests.faces.chatbotkit.conftest import STEADY_BACKSTORY, STEADY_MODEL, sdk, token_for


async def test_bots_are_created_fetched_updated_listed_and_deleted(cbk: ChatBotKit) -> None:
    created = await cbk.bot.create(
        {"name": "Helper", "backstory": "You help.", "meta": {"tier": "silver", "a": 1}}
    )
    bot = await cbk.bot.fetch(created.id)
    assert bot.id == created.id and bot.name == "Helper" and bot.backstory == "You help."
    assert bot.created_at > 1_700_000_000_000  # milliseconds (the SDK reads them as numbers)
    assert bot.meta == {"tier": "silver", "a": 1}

    await cbk.bot.update(created.id, {"meta": {"$update": {"tier": "gold"}}, "description": "d"})
    bot = await cbk.bot.fetch(created.id)
    assert bot.meta == {"tier": "gold", "a": 1} and bot.description == "d"
    await cbk.bot.update(created.id, {"meta": {"only": True}})
    assert (await cbk.bot.fetch(created.id)).meta == {"only": True}
    # The Node SDK's model with its config: `name/key=value`.
    await cbk.bot.update(created.id, {"model": "gpt-4o/temperature=0.3"})
    assert (await cbk.bot.fetch(created.id)).model == "gpt-4o"
    with pytest.raises(APIError) as unknown:
        await cbk.bot.update(created.id, {"model": "skynet-9"})
    assert unknown.value.code == "BAD_REQUEST"

    page = await cbk.bot.list({"take": 10})
    assert [item.id for item in page.items] == [created.id] and page.cursor == created.id

    deleted = await cbk.bot.delete(created.id)
    assert deleted.id == created.id
    with pytest.raises(APIError) as missing:
        await cbk.bot.fetch(created.id)
    assert (missing.value.status_code, missing.value.code, missing.value.message) == (
        404,
        "NOT_FOUND",
        "Not found",
    )
    empty = await cbk.bot.list()
    assert empty.items == [] and empty.cursor == ""


async def test_lists_page_by_cursor_in_either_order(cbk: ChatBotKit) -> None:
    bot = await cbk.bot.create({"name": "Pager"})
    made = [(await cbk.conversation.create({"botId": bot.id})).id for _ in range(5)]

    seen, cursor = [], None
    while True:
        page = await cbk.conversation.list({"take": 2, **({"cursor": cursor} if cursor else {})})
        if not page.items:
            break
        seen += [item.id for item in page.items]
        cursor = page.cursor
    assert seen == list(reversed(made))  # newest first by default

    oldest = await cbk.conversation.list({"take": 3, "order": "asc"})
    assert [item.id for item in oldest.items] == made[:3]
    streamed = [item async for item in cbk.conversation.list({"take": 100}).stream()]
    assert [item.data.id for item in streamed] == list(reversed(made))


async def test_a_conversation_completes_in_json_and_in_a_jsonl_stream(cbk: ChatBotKit) -> None:
    bot = await cbk.bot.create({"name": "Talker", "backstory": STEADY_BACKSTORY, "model": STEADY_MODEL})
    created = await cbk.conversation.create({"botId": bot.id, "messages": [{"type": "user", "text": "hi"}]})
    assert created.messages[0].text == "hi"

    answer = await cbk.conversation.complete(created.id, {"text": "What is the capital of France?"})
    assert answer.id and "Paris" in answer.text and answer.usage.token > 0
    assert answer.end.reason.value in ("stop", "length")

    events = [
        event async for event in cbk.conversation.complete(created.id, {"text": "And of Spain?"}).stream()
    ]
    kinds = [event.type.value for event in events]
    assert "token" in kinds and kinds[-1] == "result" and kinds.count("result") == 1
    result = events[-1].data
    assert "".join(event.data.token for event in events if event.type.value == "token") == result.text
    assert "Madrid" in result.text

    fetched = await cbk.conversation.fetch(created.id)
    assert fetched.bot_id == bot.id


async def test_stateless_complete_and_send_then_receive(cbk: ChatBotKit) -> None:
    bot = await cbk.bot.create({"name": "Receiver", "backstory": STEADY_BACKSTORY, "model": STEADY_MODEL})
    stateless = await cbk.conversation.complete(
        None,
        {"botId": bot.id, "messages": [{"type": "user", "text": "What is 2 + 2? Answer with the number."}]},
    )
    assert "4" in stateless.text and stateless.usage.token > 0
    raw = await cbk.conversation.complete(None, {"messages": [{"type": "user", "text": "Say hi."}]})
    assert raw.text and raw.end.reason.value in ("stop", "length")  # the server's default model
    conversation = await cbk.conversation.create({"botId": bot.id})
    sent = await cbk.conversation.send(conversation.id, {"text": "What is the capital of Italy?"})
    assert sent.id and sent.entities == []
    received = await cbk.conversation.receive(conversation.id, {})
    assert received.id != sent.id and "Rome" in received.text and received.usage.token > 0
    with pytest.raises(APIError) as nothing:
        await cbk.conversation.receive(conversation.id, {})
    assert nothing.value.status_code == 400 and nothing.value.code == "BAD_REQUEST"


async def test_errors_and_isolation(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    bot = await cbk.bot.create({"name": "Mine"})
    async with sdk(client, await token_for(client, "other")) as other:
        with pytest.raises(APIError) as hidden:
            await other.bot.fetch(bot.id)
        assert hidden.value.code == "NOT_FOUND"
        assert (await other.bot.list()).items == []
        with pytest.raises(APIError):
            await other.conversation.create({"botId": bot.id})
    async with sdk(client, "tk_not-a-token") as stranger:
        with pytest.raises(APIError) as refused:
            await stranger.bot.list()
        assert (refused.value.status_code, refused.value.code) == (401, "NOT_AUTHENTICATED")
    with pytest.raises(APIError) as bad:
        await cbk.conversation.complete(None, {"messages": []})
    assert (bad.value.status_code, bad.value.code) == (400, "BAD_REQUEST")
    usage = await cbk.usage.fetch()
    assert usage.conversations == 0 and usage.database.datasets == 0


async def test_the_wire_as_the_document_shows_it(client: httpx.AsyncClient) -> None:
    """`Authorization: Token …` and `/v1/…` as the document writes them; JSON with its exact
    content type; messages in order; JSONL lines without a blank one."""
    headers = {"Authorization": f"Token {await token_for(client, 'wire')}"}
    made = await client.post(
        "/v1/bot/create",
        headers=headers,
        json={"name": "Wire", "backstory": STEADY_BACKSTORY, "model": STEADY_MODEL},
    )
    created = await client.post("/v1/conversation/create", headers=headers, json={"botId": made.json()["id"]})
    assert created.status_code == 200 and created.headers["content-type"] == "application/json"
    conversation_id = created.json()["id"]
    await client.post(
        f"/v1/conversation/{conversation_id}/send", headers=headers, json={"text": "Hello there"}
    )
    streamed = await client.post(
        f"/v1/conversation/{conversation_id}/receive",
        headers={**headers, "Accept": "application/jsonl"},
        json={},
    )
    assert streamed.headers["content-type"].startswith("application/jsonl")
    lines = streamed.text.split("\n")
    assert lines[-1] == "" and all(lines[:-1]), "every line holds an event, and none is blank"
    kinds = [json.loads(entry)["type"] for entry in lines[:-1]]
    assert kinds[-3:] == ["message", "usage", "result"] and set(kinds[:-3]) == {"token"}
    listed = (await client.get(f"/v1/conversation/{conversation_id}/message/list", headers=headers)).json()
    assert [item["type"] for item in reversed(listed["items"])] == ["user", "bot"]
    assert listed["cursor"] == listed["items"][-1]["id"]
    wrong = await client.get("/v1/conversation/create", headers=headers)
    assert wrong.status_code == 405 and wrong.json()["code"] == "METHOD_NOT_ALLOWED"
    missing = await client.get("/v1/bot/nope/fetch", headers=headers)
    assert missing.json() == {"message": "Not found", "code": "NOT_FOUND"}


async def test_a_dataset_with_records_is_searched_and_grounds_the_bot(cbk: ChatBotKit) -> None:
    dataset = await cbk.dataset.create({"name": "kb", "meta": {"team": "front desk"}})
    opens = await cbk.dataset.record.create(
        dataset.id, {"text": "The Zorvex café opens at 9am.", "source": "faq"}
    )
    closed = await cbk.dataset.record.create(dataset.id, {"text": "The Zorvex café is closed on Sundays."})
    page = await cbk.dataset.record.list(dataset.id, {"take": 10})
    assert [item.id for item in page.items] == [closed.id, opens.id] and page.cursor == opens.id
    record = await cbk.dataset.record.fetch(dataset.id, opens.id)
    assert record.text == "The Zorvex café opens at 9am." and record.source == "faq"

    found = await cbk.dataset.search(dataset.id, {"search": "When does the café open?"})
    assert found.id == dataset.id and found.records[0].id == opens.id and found.records[0].source == "faq"
    assert 0 < found.records[0].score <= 1

    await cbk.dataset.record.update(dataset.id, closed.id, {"text": "The Zorvex café is closed on Mondays."})
    assert (await cbk.dataset.record.fetch(dataset.id, closed.id)).text.endswith("Mondays.")
    [best, *_] = (await cbk.dataset.search(dataset.id, {"search": "Which day is it closed?"})).records
    assert best.id == closed.id and "Mondays" in best.text

    bot = await cbk.bot.create(
        {"name": "Café", "backstory": STEADY_BACKSTORY, "model": STEADY_MODEL, "datasetId": dataset.id}
    )
    assert (await cbk.bot.fetch(bot.id)).dataset_id == dataset.id
    answer = await cbk.conversation.complete(
        None,
        {"botId": bot.id, "messages": [{"type": "user", "text": "At what time does the Zorvex café open?"}]},
    )
    assert "9" in answer.text

    await cbk.dataset.record.delete(dataset.id, opens.id)
    assert [item.id for item in (await cbk.dataset.record.list(dataset.id)).items] == [closed.id]
    fetched = await cbk.dataset.fetch(dataset.id)
    assert fetched.name == "kb" and fetched.meta == {"team": "front desk"}
    await cbk.dataset.delete(dataset.id)
    with pytest.raises(APIError) as gone:
        await cbk.dataset.fetch(dataset.id)
    assert gone.value.code == "NOT_FOUND"


async def test_a_partner_acts_as_its_sub_accounts_and_nothing_else(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    child = await cbk.user.create({"name": "Shop 1", "email": "shop1@example.com", "meta": {"plan": "b"}})
    fetched = await cbk.user.fetch(child.id)
    assert fetched.name == "Shop 1" and fetched.email == "shop1@example.com" and fetched.meta == {"plan": "b"}
    await cbk.user.update(child.id, {"description": "the first shop", "meta": {"$update": {"tier": 2}}})
    fetched = await cbk.user.fetch(child.id)
    assert fetched.description == "the first shop" and fetched.meta == {"plan": "b", "tier": 2}
    assert [item.id for item in (await cbk.user.list()).items] == [child.id]

    # Acting as the child: what is made belongs to the child, not to the partner.
    as_child = cbk.extend(run_as_user_id=child.id)
    made = await as_child.bot.create({"name": "Shop bot"})
    assert [item.id for item in (await as_child.bot.list()).items] == [made.id]
    assert (await cbk.bot.list()).items == []
    child_token = await cbk.user.token.create(child.id, {"name": "shop key"})
    async with sdk(client, child_token.token) as shop:
        assert [item.id for item in (await shop.bot.list()).items] == [made.id]
    assert [item.id for item in (await cbk.user.token.list(child.id)).items] == [child_token.id]

    # Someone else's partner cannot act as this child, and cannot see it.
    async with sdk(client, await token_for(client, "rival")) as rival:
        with pytest.raises(APIError) as refused:
            await rival.extend(run_as_user_id=child.id).bot.list()
        assert (refused.value.status_code, refused.value.code) == (401, "NOT_AUTHENTICATED")
        with pytest.raises(APIError) as hidden:
            await rival.user.fetch(child.id)
        assert hidden.value.code == "NOT_FOUND"

    await cbk.user.token.delete(child.id, child_token.id)
    async with sdk(client, child_token.token) as revoked:
        with pytest.raises(APIError) as gone:
            await revoked.bot.list()
        assert gone.value.code == "NOT_AUTHENTICATED"
    await cbk.user.delete(child.id)
    assert (await cbk.user.list()).items == []


async def test_a_token_limited_to_routes_is_refused_outside_them(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot = await cbk.bot.create({"name": "Open"})
    headers = {"Authorization": f"Bearer {cbk.options.token}"}
    made = await client.post(
        "/api/v1/token/create",
        headers=headers,
        json={"name": "bots only", "config": {"allowedRoutes": ["bot/**", "!bot/*/delete"]}},
    )
    assert made.status_code == 200, made.text
    scoped = made.json()
    assert scoped["token"] and scoped["id"]
    async with sdk(client, scoped["token"]) as limited:
        assert [item.id for item in (await limited.bot.list()).items] == [bot.id]
        for refused_call in (limited.conversation.list(), limited.bot.delete(bot.id), limited.dataset.list()):
            with pytest.raises(APIError) as refused:
                await refused_call
            assert (refused.value.status_code, refused.value.code) == (401, "NOT_AUTHORIZED")
    # Limited on every face, not only this one.
    other_face = await client.get("/api/v1/bots/", headers={"Authorization": f"Bearer {scoped['token']}"})
    assert other_face.status_code == 403
    # A limited token cannot make tokens, even within its routes.
    escalate = await client.post(
        "/api/v1/token/create", headers={"Authorization": f"Bearer {scoped['token']}"}, json={}
    )
    assert escalate.status_code == 401 and escalate.json()["code"] == "NOT_AUTHORIZED"
    listed = (await client.get("/api/v1/token/list", headers=headers)).json()
    assert scoped["id"] in [item["id"] for item in listed["items"]]
    deleted = await client.post(f"/api/v1/token/{scoped['id']}/delete", headers=headers, json={})
    assert deleted.json() == {"id": scoped["id"]}


async def test_the_spec_describes_what_is_served(client: httpx.AsyncClient) -> None:
    for prefix in ("/v1", "/api/v1"):
        response = await client.get(f"{prefix}/spec.json")
        assert response.status_code == 200
        spec = response.json()
        assert spec["openapi"].startswith("3.") and spec["servers"][0]["url"].endswith("/v1")
        for path in (
            "/bot/list",
            "/conversation/{conversation_id}/complete",
            "/conversation/{conversation_id}/session/create",
            "/dataset/{dataset_id}/search",
            "/dataset/{dataset_id}/file/{file_id}/attach",
            "/file/{file_id}/upload",
            "/skillset/{skillset_id}/ability/list",
            "/partner/user/{user_id}/session/create",
        ):
            assert path in spec["paths"], path
        assert not any(path.startswith(("/api/", "/v1/")) for path in spec["paths"])


async def test_messages_are_written_read_corrected_rated_and_removed(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    bot = await cbk.bot.create({"name": "Notes"})
    conversation = await cbk.conversation.create({"botId": bot.id})
    headers = {"Authorization": f"Bearer {cbk.options.token}"}
    base = f"/api/v1/conversation/{conversation.id}/message"
    made = await client.post(
        f"{base}/create", headers=headers, json={"type": "bot", "text": "Welcome!", "meta": {"k": 1}}
    )
    message_id = made.json()["id"]
    fetched = (await client.get(f"{base}/{message_id}/fetch", headers=headers)).json()
    assert (fetched["type"], fetched["text"], fetched["meta"]) == ("bot", "Welcome!", {"k": 1})
    await client.post(
        f"{base}/{message_id}/update",
        headers=headers,
        json={"text": "Welcome back!", "meta": {"$update": {"j": 2}}},
    )
    fetched = (await client.get(f"{base}/{message_id}/fetch", headers=headers)).json()
    assert fetched["text"] == "Welcome back!" and fetched["meta"] == {"k": 1, "j": 2}
    rated = await client.post(f"{base}/{message_id}/downvote", headers=headers, json={"reason": "too short"})
    assert rated.json() == {"id": message_id}
    assert (await cbk.conversation.upvote(conversation.id, {"value": 1})).id == conversation.id
    bad = await client.post(f"{base}/create", headers=headers, json={"type": "wizard", "text": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "BAD_REQUEST"
    await client.post(f"{base}/{message_id}/delete", headers=headers, json={})
    gone = await client.get(f"{base}/{message_id}/fetch", headers=headers)
    assert gone.status_code == 404


async def conversation_ids(client: httpx.AsyncClient, cbk: ChatBotKit, query: dict[str, str]) -> set[str]:
    """The ids of the conversations listed with these query parameters."""
    headers = {"Authorization": f"Bearer {cbk.options.token}"}
    listed = await client.get("/v1/conversation/list", params=query, headers=headers)
    assert listed.status_code == 200, listed.text
    return {item["id"] for item in listed.json()["items"]}


async def test_contacts_are_kept_by_fingerprint_and_linked_to_conversations(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    made = await cbk.contact.create({"name": "Ana", "email": "ana@example.com", "fingerprint": "ana-1"})
    contact = await cbk.contact.fetch(made.id)
    assert (contact.name, contact.email, contact.fingerprint) == ("Ana", "ana@example.com", "ana-1")
    with pytest.raises(APIError) as twice:
        await cbk.contact.create({"fingerprint": "ana-1"})
    assert (twice.value.status_code, twice.value.code) == (409, "CONFLICT")
    anonymous = await cbk.contact.fetch((await cbk.contact.create({"name": "Visitor"})).id)
    assert anonymous.fingerprint  # one is made when none is given

    bot = await cbk.bot.create({"name": "Desk"})
    first = await cbk.conversation.create({"botId": bot.id, "contactId": made.id})
    second = await cbk.conversation.create(
        {"botId": bot.id, "contactId": {"fingerprint": "ana-1", "name": "Ana"}}
    )
    assert (await cbk.conversation.fetch(second.id)).contact_id == made.id  # ensured, not duplicated
    await cbk.contact.update(made.id, {"phone": "+34 600 000 000", "meta": {"$update": {"vip": True}}})
    contact = await cbk.contact.fetch(made.id)
    assert contact.phone == "+34 600 000 000" and contact.meta == {"vip": True}
    assert len((await cbk.contact.list()).items) == 2
    assert (await cbk.contact.ensure({"fingerprint": "ana-1"})).id == made.id
    talks = await cbk.contact.conversation.list(made.id)
    assert sorted(item.id for item in talks.items) == sorted([first.id, second.id])
    await cbk.conversation.create({"botId": bot.id, "meta": {"channel": "web", "n": 5}})
    assert await conversation_ids(client, cbk, {"contactId": made.id}) == {first.id, second.id}
    await cbk.conversation.update(first.id, {"meta": {"channel": "web"}})
    assert await conversation_ids(client, cbk, {"contactId": made.id, "meta.channel": "web"}) == {first.id}
    assert len(await conversation_ids(client, cbk, {"meta.channel": "web"})) == 2
    assert await conversation_ids(client, cbk, {"meta.channel": "mail"}) == set()
    assert await conversation_ids(client, cbk, {"meta.we\"ird'.key[0]": "x"}) == set()
    assert await conversation_ids(client, cbk, {"taskId": "task-1"}) == set()  # there are no tasks

    await cbk.contact.delete(made.id)
    assert getattr(await cbk.conversation.fetch(first.id), "contact_id", None) is None
    with pytest.raises(APIError) as gone:
        await cbk.conversation.create({"botId": bot.id, "contactId": made.id})
    assert gone.value.code == "NOT_FOUND"


async def test_a_list_stream_goes_through_every_page(make_client: AppFactory) -> None:
    client = await make_client(rate_limit_plans={"standard": "1000/minute"})
    headers = {"Authorization": f"Bearer {await token_for(client, 'many')}"}
    for number in range(105):
        made = await client.post("/v1/contact/create", headers=headers, json={"name": f"c{number}"})
        assert made.status_code == 200
    async with sdk(client, headers["Authorization"].removeprefix("Bearer ")) as cbk:
        page = await cbk.contact.list()
        assert len(page.items) == 100  # a page holds at most 100
        streamed = [item.data.name async for item in cbk.contact.list().stream()]
        assert len(streamed) == 105 and streamed[0] == "c104" and streamed[-1] == "c0"
        first = [item.data.name async for item in cbk.contact.list({"take": 3, "order": "asc"}).stream()]
        assert first == ["c0", "c1", "c2"]
