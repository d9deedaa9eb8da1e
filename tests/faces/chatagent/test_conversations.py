"""ChatAgent /conversations over HTTP: create, list, read, delete, and the message history.

Sending a message over HTTP comes later; until then messages are added through the core,
as the chat engine will add them.
"""

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tertulia.core.accounts import get_account
from tertulia.core.conversations import add_message
from tertulia.core.principal import Principal
from tertulia.store.tables import Message
from tests.faces.chatagent.conftest import User
from tests.faces.chatagent.test_errors import assert_error, is_utc_timestamp

DOCUMENT_CONTEXT = {"user_preferences": {"language": "zh", "theme": "light"}}
CONVERSATION_FIELDS = {
    "id",
    "user_id",
    "bot_id",
    "title",
    "platform",
    "platform_chat_id",
    "status",
    "context",
    "created_at",
    "updated_at",
}
SUMMARY_FIELDS = {
    "id",
    "bot_id",
    "title",
    "platform",
    "status",
    "message_count",
    "created_at",
    "last_message_at",
}
MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "content",
    "message_type",
    "sender_type",
    "sender_id",
    "created_at",
}


def document_conversation(bot_id: str) -> dict[str, Any]:
    return {
        "bot_id": bot_id,
        "title": "与用户的对话",
        "platform": "web",
        "platform_chat_id": "chat_123",
        "context": DOCUMENT_CONTEXT,
    }


async def create_bot(client: httpx.AsyncClient, user: User, name: str) -> str:
    response = await client.post("/api/v1/bots/", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def create_conversation(
    client: httpx.AsyncClient, user: User, bot_id: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/conversations/", json={"bot_id": bot_id, **body}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def say(client: httpx.AsyncClient, user: User, conversation_id: str, role: str, text: str) -> None:
    """Adds a message the way the chat engine will: through the core, as `user`."""
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.database.session() as session:
        account = await get_account(session, user.id)
        await add_message(session, Principal(account), conversation_id, role, text)


async def list_conversations(client: httpx.AsyncClient, user: User, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/conversations/", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def list_messages(
    client: httpx.AsyncClient, user: User, conversation_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/api/v1/conversations/{conversation_id}/messages", params=params, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- create and read --------------------------------------------------------------------


async def test_the_document_create_example_opens_an_active_conversation(
    client: httpx.AsyncClient, alice: User
) -> None:
    bot_id = await create_bot(client, alice, "Helpdesk")

    response = await client.post(
        "/api/v1/conversations/", json=document_conversation(bot_id), headers=alice.headers
    )

    assert response.status_code == 201, response.text
    conversation = response.json()
    assert CONVERSATION_FIELDS <= set(conversation)
    assert conversation["id"]
    assert conversation["user_id"] == alice.id
    assert conversation["bot_id"] == bot_id
    assert conversation["title"] == "与用户的对话"
    assert conversation["platform"] == "web"
    assert conversation["platform_chat_id"] == "chat_123"
    assert conversation["status"] == "active"
    assert conversation["context"] == DOCUMENT_CONTEXT
    assert is_utc_timestamp(conversation["created_at"]) and is_utc_timestamp(conversation["updated_at"])

    fetched = await client.get(f"/api/v1/conversations/{conversation['id']}", headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == conversation


async def test_the_python_sdk_example_needs_only_a_bot_and_a_title(
    client: httpx.AsyncClient, alice: User
) -> None:
    bot_id = await create_bot(client, alice, "我的机器人")

    conversation = await create_conversation(client, alice, bot_id, title="测试对话")

    assert conversation["title"] == "测试对话"
    assert conversation["status"] == "active"
    assert conversation["platform"] == "web"
    assert conversation["context"] == {}


async def test_a_conversation_on_an_unknown_bot_is_not_found_and_not_stored(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        "/api/v1/conversations/", json=document_conversation("bot_id_123"), headers=alice.headers
    )

    assert_error(response, 404, "NOT_FOUND")
    assert (await list_conversations(client, alice))["total"] == 0


async def test_an_unknown_conversation_is_not_found(client: httpx.AsyncClient, alice: User) -> None:
    for response in (
        await client.get("/api/v1/conversations/conv_id_123", headers=alice.headers),
        await client.get("/api/v1/conversations/conv_id_123/messages", headers=alice.headers),
        await client.delete("/api/v1/conversations/conv_id_123", headers=alice.headers),
    ):
        assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("length", [32, 33, 64, 65])
async def test_a_platform_name_is_either_stored_whole_or_refused(
    client: httpx.AsyncClient, alice: User, length: int
) -> None:
    bot_id = await create_bot(client, alice, "Helpdesk")
    platform = "p" * length

    response = await client.post(
        "/api/v1/conversations/", json={"bot_id": bot_id, "platform": platform}, headers=alice.headers
    )

    # 32 always fits and 65 never does; in between, whatever the limit is, a platform the
    # API takes is kept as sent, on every database, and one it does not is a 400.
    if length == 32:
        assert response.status_code == 201, response.text
    if length == 65:
        assert response.status_code == 400, response.text
    if response.status_code == 201:
        fetched = await client.get(f"/api/v1/conversations/{response.json()['id']}", headers=alice.headers)
        assert fetched.json()["platform"] == platform
    else:
        assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "platform"


# --- list -------------------------------------------------------------------------------


@pytest.fixture
async def three_conversations(client: httpx.AsyncClient, alice: User) -> dict[str, Any]:
    """Two on the helpdesk (one with two messages, one empty) and one on sales with one."""
    helpdesk = await create_bot(client, alice, "Helpdesk")
    sales = await create_bot(client, alice, "Sales")
    talked = await create_conversation(client, alice, helpdesk, title="talked")
    await say(client, alice, talked["id"], "user", "你好，你能做什么？")
    await say(client, alice, talked["id"], "assistant", "你好！我是一个智能助手...")
    quiet = await create_conversation(client, alice, helpdesk, title="quiet")
    sold = await create_conversation(client, alice, sales, title="sold")
    await say(client, alice, sold["id"], "user", "价格是多少？")
    return {"helpdesk": helpdesk, "sales": sales, "talked": talked, "quiet": quiet, "sold": sold}


def titles(page: dict[str, Any]) -> list[str]:
    return sorted(item["title"] for item in page["conversations"])


async def test_the_list_matches_the_document_example_with_message_counts(
    client: httpx.AsyncClient, alice: User, three_conversations: dict[str, Any]
) -> None:
    page = await list_conversations(client, alice)

    assert {"conversations", "total", "limit", "offset"} <= set(page)
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    by_title = {item["title"]: item for item in page["conversations"]}
    assert sorted(by_title) == ["quiet", "sold", "talked"]
    for item in page["conversations"]:
        assert SUMMARY_FIELDS <= set(item)
        assert item["status"] == "active"
        assert item["platform"] == "web"
    talked = by_title["talked"]
    assert talked["id"] == three_conversations["talked"]["id"]
    assert talked["bot_id"] == three_conversations["helpdesk"]
    assert talked["message_count"] == 2
    last = (await list_messages(client, alice, talked["id"]))["messages"][-1]
    assert datetime.fromisoformat(talked["last_message_at"]) == datetime.fromisoformat(last["created_at"])
    assert is_utc_timestamp(talked["last_message_at"])
    assert by_title["sold"]["message_count"] == 1
    assert (by_title["quiet"]["message_count"], by_title["quiet"]["last_message_at"]) == (0, None)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"bot_id": "helpdesk"}, ["quiet", "talked"]),
        ({"bot_id": "sales"}, ["sold"]),
        ({"bot_id": "bot_id_123"}, []),
        ({"status": "active"}, ["quiet", "sold", "talked"]),
        ({"status": "resolved"}, []),
        ({"bot_id": "helpdesk", "status": "active", "limit": 20, "offset": 0}, ["quiet", "talked"]),
    ],
)
async def test_the_list_filters_by_bot_and_status(
    client: httpx.AsyncClient,
    alice: User,
    three_conversations: dict[str, Any],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    if params.get("bot_id") in three_conversations:
        params = {**params, "bot_id": three_conversations[params["bot_id"]]}

    page = await list_conversations(client, alice, **params)

    assert titles(page) == expected
    assert page["total"] == len(expected)


async def test_an_unknown_status_filter_is_refused(client: httpx.AsyncClient, alice: User) -> None:
    response = await client.get("/api/v1/conversations/?status=archived", headers=alice.headers)

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "status"


async def test_the_list_pages_with_limit_and_offset(
    client: httpx.AsyncClient, alice: User, three_conversations: dict[str, Any]
) -> None:
    first = await list_conversations(client, alice, limit=2, offset=0)
    second = await list_conversations(client, alice, limit=2, offset=2)

    assert (first["total"], first["limit"], first["offset"], len(first["conversations"])) == (3, 2, 0, 2)
    assert (second["total"], second["limit"], second["offset"], len(second["conversations"])) == (3, 2, 2, 1)
    assert sorted(titles(first) + titles(second)) == ["quiet", "sold", "talked"]


# --- messages ---------------------------------------------------------------------------


async def test_the_history_shows_who_said_what_as_the_document_does(
    client: httpx.AsyncClient, alice: User
) -> None:
    bot_id = await create_bot(client, alice, "Helpdesk")
    conversation = await create_conversation(client, alice, bot_id, title="与用户的对话")
    await say(client, alice, conversation["id"], "user", "你好，你能做什么？")
    await say(client, alice, conversation["id"], "assistant", "你好！我是一个智能助手...")

    page = await list_messages(client, alice, conversation["id"])

    assert (page["total"], page["limit"], page["offset"]) == (2, 50, 0)
    question, answer = page["messages"]
    for message in (question, answer):
        assert MESSAGE_FIELDS <= set(message)
        assert message["id"]
        assert message["conversation_id"] == conversation["id"]
        assert message["message_type"] == "text"
        assert is_utc_timestamp(message["created_at"])
    assert (question["content"], question["sender_type"], question["sender_id"]) == (
        "你好，你能做什么？",
        "user",
        alice.id,
    )
    assert (answer["content"], answer["sender_type"], answer["sender_id"]) == (
        "你好！我是一个智能助手...",
        "bot",
        bot_id,
    )
    assert question["id"] != answer["id"]


async def test_the_history_pages_with_limit_and_offset(client: httpx.AsyncClient, alice: User) -> None:
    bot_id = await create_bot(client, alice, "Helpdesk")
    conversation = await create_conversation(client, alice, bot_id)
    for number in range(1, 6):
        await say(client, alice, conversation["id"], "user", f"message {number}")

    page = await list_messages(client, alice, conversation["id"], limit=2, offset=1)

    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [message["content"] for message in page["messages"]] == ["message 2", "message 3"]


async def test_a_new_conversation_has_an_empty_history(client: httpx.AsyncClient, alice: User) -> None:
    bot_id = await create_bot(client, alice, "Helpdesk")
    conversation = await create_conversation(client, alice, bot_id)

    page = await list_messages(client, alice, conversation["id"])

    assert (page["messages"], page["total"]) == ([], 0)


async def test_a_bot_status_counts_the_messages_of_its_conversations(
    client: httpx.AsyncClient, alice: User, three_conversations: dict[str, Any]
) -> None:
    response = await client.get(
        f"/api/v1/bots/{three_conversations['helpdesk']}/status", headers=alice.headers
    )

    status = response.json()
    assert status["message_count"] == 2
    last = (await list_messages(client, alice, three_conversations["talked"]["id"]))["messages"][-1]
    assert datetime.fromisoformat(status["last_activity"]) == datetime.fromisoformat(last["created_at"])


# --- delete -----------------------------------------------------------------------------


async def message_rows(client: httpx.AsyncClient, conversation_id: str) -> int:
    runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.database.session() as session:
        query = select(func.count()).select_from(Message).where(Message.conversation_id == conversation_id)
        return await session.scalar(query) or 0


async def test_a_deleted_conversation_is_gone_with_its_messages(
    client: httpx.AsyncClient, alice: User, three_conversations: dict[str, Any]
) -> None:
    talked = three_conversations["talked"]["id"]

    response = await client.delete(f"/api/v1/conversations/{talked}", headers=alice.headers)

    assert response.status_code == 200
    assert response.json()["success"] is True
    assert_error(await client.get(f"/api/v1/conversations/{talked}", headers=alice.headers), 404, "NOT_FOUND")
    assert_error(
        await client.get(f"/api/v1/conversations/{talked}/messages", headers=alice.headers), 404, "NOT_FOUND"
    )
    assert titles(await list_conversations(client, alice)) == ["quiet", "sold"]
    assert await message_rows(client, talked) == 0
    assert (await list_messages(client, alice, three_conversations["sold"]["id"]))["total"] == 1


async def test_deleting_a_bot_removes_its_conversations(
    client: httpx.AsyncClient, alice: User, three_conversations: dict[str, Any]
) -> None:
    helpdesk = three_conversations["helpdesk"]

    response = await client.delete(f"/api/v1/bots/{helpdesk}", headers=alice.headers)

    assert response.status_code == 200
    for name in ("talked", "quiet"):
        conversation_id = three_conversations[name]["id"]
        gone = await client.get(f"/api/v1/conversations/{conversation_id}", headers=alice.headers)
        assert_error(gone, 404, "NOT_FOUND")
        assert await message_rows(client, conversation_id) == 0
    page = await list_conversations(client, alice)
    assert titles(page) == ["sold"]
    assert page["total"] == 1
    assert (await list_conversations(client, alice, bot_id=helpdesk))["total"] == 0
    assert (await list_messages(client, alice, three_conversations["sold"]["id"]))["total"] == 1
