"""Two accounts over HTTP: bob never sees, changes or learns of alice's rows. Another
account's row answers exactly like one that does not exist: 404, never 403, no data."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tertulia.core.accounts import get_account
from tertulia.core.conversations import add_message
from tertulia.core.principal import Principal
from tests.faces.chatagent.conftest import User
from tests.faces.chatagent.test_errors import assert_error

BOT_NAME = "Alice 的秘密机器人"
SECRET_WORDS = "the launch code is 0000"


@dataclass
class AlicesWorld:
    bot: dict[str, Any]
    conversation: dict[str, Any]
    base: dict[str, Any]
    key: dict[str, Any]


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def world(client: httpx.AsyncClient, alice: User) -> AlicesWorld:
    base = await created(
        await client.post("/api/v1/knowledge/bases", json={"name": "Alice's notes"}, headers=alice.headers)
    )
    bot = await created(
        await client.post(
            "/api/v1/bots/",
            json={"name": BOT_NAME, "description": "private", "knowledge_base_ids": [base["id"]]},
            headers=alice.headers,
        )
    )
    conversation = await created(
        await client.post(
            "/api/v1/conversations/",
            json={"bot_id": bot["id"], "title": "Alice's chat"},
            headers=alice.headers,
        )
    )
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.database.session() as session:
        account = await get_account(session, alice.id)
        await add_message(session, Principal(account), conversation["id"], "user", SECRET_WORDS)
    key = await created(
        await client.post("/api/v1/auth/api-keys", json={"name": "alice-ci"}, headers=alice.headers)
    )
    return AlicesWorld(bot, conversation, base, key)


async def snapshot(client: httpx.AsyncClient, alice: User, world: AlicesWorld) -> dict[str, Any]:
    """Everything alice can read about her rows."""
    paths = {
        "bot": f"/api/v1/bots/{world.bot['id']}",
        "status": f"/api/v1/bots/{world.bot['id']}/status",
        "bots": "/api/v1/bots/",
        "conversation": f"/api/v1/conversations/{world.conversation['id']}",
        "conversations": "/api/v1/conversations/",
        "messages": f"/api/v1/conversations/{world.conversation['id']}/messages",
        "base": f"/api/v1/knowledge/bases/{world.base['id']}",
        "bases": "/api/v1/knowledge/bases",
        "keys": "/api/v1/auth/api-keys",
    }
    seen = {}
    for name, path in paths.items():
        response = await client.get(path, headers=alice.headers)
        assert response.status_code == 200, (path, response.text)
        seen[name] = response.json()
    for key in seen["keys"]["api_keys"]:
        key.pop("last_used_at")  # alice's own key check below touches it
    by_key = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {world.key['key']}"})
    seen["key works"] = by_key.status_code == 200
    return seen


def attempts(world: AlicesWorld) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    bot, conversation, base, key = (
        world.bot["id"],
        world.conversation["id"],
        world.base["id"],
        world.key["id"],
    )
    return {
        "get bot": ("GET", f"/api/v1/bots/{bot}", None),
        "update bot": ("PUT", f"/api/v1/bots/{bot}", {"name": "pwned", "description": "pwned"}),
        "delete bot": ("DELETE", f"/api/v1/bots/{bot}", None),
        "start bot": ("POST", f"/api/v1/bots/{bot}/start", None),
        "stop bot": ("POST", f"/api/v1/bots/{bot}/stop", None),
        "bot status": ("GET", f"/api/v1/bots/{bot}/status", None),
        "get conversation": ("GET", f"/api/v1/conversations/{conversation}", None),
        "delete conversation": ("DELETE", f"/api/v1/conversations/{conversation}", None),
        "read messages": ("GET", f"/api/v1/conversations/{conversation}/messages", None),
        "get knowledge base": ("GET", f"/api/v1/knowledge/bases/{base}", None),
        "delete knowledge base": ("DELETE", f"/api/v1/knowledge/bases/{base}", None),
        "revoke api key": ("DELETE", f"/api/v1/auth/api-keys/{key}", None),
        "converse with alice's bot": ("POST", "/api/v1/conversations/", {"bot_id": bot, "title": "hi"}),
        "bot on alice's knowledge": (
            "POST",
            "/api/v1/bots/",
            {"name": "Bob's", "knowledge_base_ids": [base]},
        ),
        "key bound to alice's bot": ("POST", "/api/v1/auth/api-keys", {"name": "bob", "bot_id": bot}),
    }


ATTEMPTS = [
    "get bot",
    "update bot",
    "delete bot",
    "start bot",
    "stop bot",
    "bot status",
    "get conversation",
    "delete conversation",
    "read messages",
    "get knowledge base",
    "delete knowledge base",
    "revoke api key",
    "converse with alice's bot",
    "bot on alice's knowledge",
    "key bound to alice's bot",
]


@pytest.mark.parametrize("credential", ["token", "api key"])
@pytest.mark.parametrize("attempt", ATTEMPTS)
async def test_bob_is_told_alices_rows_do_not_exist_and_changes_nothing(
    client: httpx.AsyncClient, alice: User, bob: User, world: AlicesWorld, attempt: str, credential: str
) -> None:
    headers = bob.headers
    if credential == "api key":
        bobs_key = await created(
            await client.post("/api/v1/auth/api-keys", json={"name": "b"}, headers=bob.headers)
        )
        headers = {"Authorization": f"Bearer {bobs_key['key']}"}
    before = await snapshot(client, alice, world)
    method, path, body = attempts(world)[attempt]

    response = await client.request(method, path, json=body, headers=headers)

    assert_error(response, 404, "NOT_FOUND")
    for private in (BOT_NAME, "Alice's chat", "Alice's notes", SECRET_WORDS, alice.id, world.key["prefix"]):
        assert private not in response.text
    assert await snapshot(client, alice, world) == before
    assert before["key works"] is True
    # Nothing was made on bob's side either.
    for path, field in (("/api/v1/bots/", "bots"), ("/api/v1/conversations/", "conversations")):
        assert (await client.get(path, headers=bob.headers)).json()[field] == []


async def test_bob_cannot_attach_alices_knowledge_base_to_his_own_bot(
    client: httpx.AsyncClient, alice: User, bob: User, world: AlicesWorld
) -> None:
    bobs = await created(await client.post("/api/v1/bots/", json={"name": "Bob's"}, headers=bob.headers))

    response = await client.put(
        f"/api/v1/bots/{bobs['id']}", json={"knowledge_base_ids": [world.base["id"]]}, headers=bob.headers
    )

    assert_error(response, 404, "NOT_FOUND")
    after = await client.get(f"/api/v1/bots/{bobs['id']}", headers=bob.headers)
    assert after.json()["knowledge_base_ids"] == []


async def test_bobs_lists_never_include_alices_rows(
    client: httpx.AsyncClient, alice: User, bob: User, world: AlicesWorld
) -> None:
    # The same bot name is bob's to use: a conflict would tell him alice's exists.
    bobs_bot = await created(await client.post("/api/v1/bots/", json={"name": BOT_NAME}, headers=bob.headers))
    bobs_conversation = await created(
        await client.post("/api/v1/conversations/", json={"bot_id": bobs_bot["id"]}, headers=bob.headers)
    )
    bobs_base = await created(
        await client.post("/api/v1/knowledge/bases", json={"name": "B"}, headers=bob.headers)
    )
    bobs_key = await created(
        await client.post("/api/v1/auth/api-keys", json={"name": "b"}, headers=bob.headers)
    )

    lists = {
        "bots": await client.get("/api/v1/bots/", headers=bob.headers),
        "search": await client.get("/api/v1/bots/", params={"search": "秘密"}, headers=bob.headers),
        "private": await client.get("/api/v1/bots/", params={"search": "private"}, headers=bob.headers),
        "conversations": await client.get("/api/v1/conversations/", headers=bob.headers),
        "by alice's bot": await client.get(
            "/api/v1/conversations/", params={"bot_id": world.bot["id"]}, headers=bob.headers
        ),
        "bases": await client.get("/api/v1/knowledge/bases", headers=bob.headers),
        "keys": await client.get("/api/v1/auth/api-keys", headers=bob.headers),
    }

    def ids(name: str, field: str) -> list[str]:
        assert lists[name].status_code == 200, lists[name].text
        return [row["id"] for row in lists[name].json()[field]]

    assert ids("bots", "bots") == [bobs_bot["id"]]
    assert ids("search", "bots") == [bobs_bot["id"]]
    assert ids("private", "bots") == []
    assert ids("conversations", "conversations") == [bobs_conversation["id"]]
    assert ids("by alice's bot", "conversations") == []
    assert ids("bases", "knowledge_bases") == [bobs_base["id"]]
    assert ids("keys", "api_keys") == [bobs_key["id"]]
    totals = {name: response.json()["total"] for name, response in lists.items()}
    assert totals == {
        "bots": 1,
        "search": 1,
        "private": 0,
        "conversations": 1,
        "by alice's bot": 0,
        "bases": 1,
        "keys": 1,
    }
    for response in lists.values():
        assert world.bot["id"] not in response.text
        assert world.conversation["id"] not in response.text
        assert world.base["id"] not in response.text
        assert world.key["id"] not in response.text


async def test_alice_still_sees_only_her_own_rows(
    client: httpx.AsyncClient, alice: User, bob: User, world: AlicesWorld
) -> None:
    await created(await client.post("/api/v1/bots/", json={"name": "Bob's"}, headers=bob.headers))
    await created(await client.post("/api/v1/knowledge/bases", json={"name": "B"}, headers=bob.headers))

    bots = (await client.get("/api/v1/bots/", headers=alice.headers)).json()
    bases = (await client.get("/api/v1/knowledge/bases", headers=alice.headers)).json()

    assert [bot["id"] for bot in bots["bots"]] == [world.bot["id"]]
    assert [base["id"] for base in bases["knowledge_bases"]] == [world.base["id"]]
