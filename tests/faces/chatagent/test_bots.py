"""ChatAgent /bots over HTTP: create, list with filters, read, change, delete, start and stop."""

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.faces.chatagent.conftest import User
from tests.faces.chatagent.test_errors import assert_error, is_utc_timestamp
from tests.providers.standins import API_KEY, StandIn

# The document's knowledge base example.
DOCUMENT_KNOWLEDGE_BASE = {
    "name": "产品知识库",
    "description": "包含产品相关的所有文档",
    "vector_store_type": "chroma",
    "embedding_model": "text-embedding-ada-002",
    "chunk_size": 1000,
    "chunk_overlap": 200,
    "metadata": {"category": "product", "language": "zh"},
}
LLM_API_KEY = "your_openai_api_key"
PLATFORM_API_KEY = "platform_api_key"
SUMMARY_FIELDS = {
    "id",
    "name",
    "description",
    "avatar_url",
    "platform_type",
    "is_active",
    "created_at",
    "updated_at",
}
DETAIL_FIELDS = SUMMARY_FIELDS | {"user_id", "knowledge_base_ids", "plugins"}


@pytest.fixture
async def client(make_client, standin: StandIn) -> httpx.AsyncClient:
    """The document's knowledge base embeds with OpenAI's text-embedding-ada-002, so this
    server has an OpenAI key: the local stand-in that speaks OpenAI's protocol."""
    return await make_client(openai_api_key=API_KEY, openai_base_url=standin.url + "/v1")


def document_bot(knowledge_base_ids: list[str]) -> dict[str, Any]:
    """The document's create example, with knowledge bases that exist."""
    return {
        "name": "我的聊天机器人",
        "description": "这是一个智能聊天机器人",
        "avatar_url": "https://example.com/avatar.jpg",
        "platform_type": "web",
        "platform_config": {"webhook_url": "https://your-domain.com/webhook", "api_key": PLATFORM_API_KEY},
        "llm_config": {
            "provider": "openai",
            "model": "gpt-3.5-turbo",
            "api_key": LLM_API_KEY,
            "temperature": 0.7,
            "max_tokens": 2000,
            "system_prompt": "你是一个有帮助的助手",
        },
        "knowledge_base_ids": knowledge_base_ids,
        "plugins": ["weather", "calculator"],
    }


async def create_knowledge_base(client: httpx.AsyncClient, user: User, name: str) -> str:
    response = await client.post(
        "/api/v1/knowledge/bases", json={**DOCUMENT_KNOWLEDGE_BASE, "name": name}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def create_bot(client: httpx.AsyncClient, user: User, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/bots/", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def create_document_bot(client: httpx.AsyncClient, user: User) -> dict[str, Any]:
    bases = [await create_knowledge_base(client, user, name) for name in ("产品知识库", "售后知识库")]
    return await create_bot(client, user, **document_bot(bases))


async def list_bots(client: httpx.AsyncClient, user: User, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/bots/", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def get_bot(client: httpx.AsyncClient, user: User, bot_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/bots/{bot_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


# --- create -----------------------------------------------------------------------------


async def test_the_document_create_example_answers_with_every_documented_field(
    client: httpx.AsyncClient, alice: User
) -> None:
    bases = [await create_knowledge_base(client, alice, name) for name in ("产品知识库", "售后知识库")]

    response = await client.post("/api/v1/bots/", json=document_bot(bases), headers=alice.headers)

    assert response.status_code == 201, response.text
    bot = response.json()
    assert DETAIL_FIELDS <= set(bot)
    assert bot["id"]
    assert bot["name"] == "我的聊天机器人"
    assert bot["description"] == "这是一个智能聊天机器人"
    assert bot["avatar_url"] == "https://example.com/avatar.jpg"
    assert bot["user_id"] == alice.id
    assert bot["platform_type"] == "web"
    assert bot["is_active"] is False
    assert bot["knowledge_base_ids"] == bases
    assert bot["plugins"] == ["weather", "calculator"]
    assert is_utc_timestamp(bot["created_at"]) and is_utc_timestamp(bot["updated_at"])
    assert bot["llm_config"]["provider"] == "openai"
    assert bot["llm_config"]["model"] == "gpt-3.5-turbo"
    assert bot["llm_config"]["temperature"] == 0.7
    assert bot["llm_config"]["max_tokens"] == 2000
    assert bot["llm_config"]["system_prompt"] == "你是一个有帮助的助手"
    assert bot["platform_config"]["webhook_url"] == "https://your-domain.com/webhook"
    assert await get_bot(client, alice, bot["id"]) == bot


async def test_the_llm_api_key_and_platform_secrets_are_never_echoed_back(
    client: httpx.AsyncClient, alice: User
) -> None:
    created = await client.post("/api/v1/bots/", json=document_bot([]), headers=alice.headers)
    bot_id = created.json()["id"]
    replies = [
        created,
        await client.get(f"/api/v1/bots/{bot_id}", headers=alice.headers),
        await client.get("/api/v1/bots/", headers=alice.headers),
        await client.put(f"/api/v1/bots/{bot_id}", json={"description": "changed"}, headers=alice.headers),
    ]

    for reply in replies:
        assert reply.status_code in (200, 201), reply.text
        assert LLM_API_KEY not in reply.text
        assert PLATFORM_API_KEY not in reply.text
    assert created.json()["llm_config"].get("api_key") in (None, "********")


async def test_secrets_nested_in_the_platform_config_are_not_echoed_either(
    client: httpx.AsyncClient, alice: User
) -> None:
    config = {
        "webhook_url": "https://your-domain.com/webhook",
        "oauth": {"client_id": "public-id", "client_secret": "nested-secret-1"},
        "bots": [{"name": "main", "bot_token": "nested-secret-2"}],
    }

    created = await client.post(
        "/api/v1/bots/",
        json={"name": "Slack", "platform_type": "slack", "platform_config": config},
        headers=alice.headers,
    )

    assert created.status_code == 201, created.text
    fetched = await client.get(f"/api/v1/bots/{created.json()['id']}", headers=alice.headers)
    for reply in (created, fetched):
        assert "nested-secret-1" not in reply.text
        assert "nested-secret-2" not in reply.text
        assert reply.json()["platform_config"]["oauth"]["client_id"] == "public-id"


async def test_a_name_of_128_chinese_characters_is_kept_whole(client: httpx.AsyncClient, alice: User) -> None:
    name = "机" * 128

    bot = await create_bot(client, alice, name=name)

    assert (await get_bot(client, alice, bot["id"]))["name"] == name


@pytest.mark.parametrize(
    "knowledge_base_ids",
    [
        pytest.param(["kb_id_1", "kb_id_2"], id="documents-placeholders"),
        pytest.param(None, id="one-real-one-not"),
    ],
)
async def test_an_unknown_knowledge_base_is_not_found_and_no_bot_is_stored(
    client: httpx.AsyncClient, alice: User, knowledge_base_ids: list[str] | None
) -> None:
    if knowledge_base_ids is None:
        knowledge_base_ids = [await create_knowledge_base(client, alice, "real"), "kb_id_2"]

    response = await client.post(
        "/api/v1/bots/", json=document_bot(knowledge_base_ids), headers=alice.headers
    )

    details = assert_error(response, 404, "NOT_FOUND")
    assert details["field"] == "knowledge_base_ids"
    assert (await list_bots(client, alice))["total"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"llm_config": {"provider": "skynet", "model": "t-800"}}, "provider", id="provider"),
        pytest.param({"plugins": ["weather", "teleport"]}, "plugins", id="plugin"),
        pytest.param({"platform_type": "myspace"}, "platform_type", id="platform"),
    ],
)
async def test_an_unknown_provider_plugin_or_platform_is_refused(
    client: httpx.AsyncClient, alice: User, change: dict[str, Any], field: str
) -> None:
    created = await client.post("/api/v1/bots/", json={"name": "Helpdesk", **change}, headers=alice.headers)
    bot = await create_bot(client, alice, name="Existing", plugins=["calculator"])
    updated = await client.put(f"/api/v1/bots/{bot['id']}", json=change, headers=alice.headers)

    for response in (created, updated):
        assert assert_error(response, 400, "VALIDATION_ERROR")["field"].endswith(field)
    assert [item["name"] for item in (await list_bots(client, alice))["bots"]] == ["Existing"]
    assert await get_bot(client, alice, bot["id"]) == bot


async def test_a_second_bot_with_the_same_name_is_a_conflict(client: httpx.AsyncClient, alice: User) -> None:
    await create_bot(client, alice, name="Helpdesk")
    other = await create_bot(client, alice, name="Sales")

    again = await client.post("/api/v1/bots/", json={"name": "Helpdesk"}, headers=alice.headers)
    renamed = await client.put(
        f"/api/v1/bots/{other['id']}", json={"name": "Helpdesk"}, headers=alice.headers
    )

    assert assert_error(again, 409, "DUPLICATE_RESOURCE")["field"] == "name"
    assert assert_error(renamed, 409, "DUPLICATE_RESOURCE")["field"] == "name"
    assert sorted(bot["name"] for bot in (await list_bots(client, alice))["bots"]) == ["Helpdesk", "Sales"]


# --- list -------------------------------------------------------------------------------


@pytest.fixture
async def three_bots(client: httpx.AsyncClient, alice: User) -> dict[str, dict[str, Any]]:
    bots = {
        "helpdesk": await create_bot(client, alice, name="Helpdesk", description="Answers questions"),
        "sales": await create_bot(client, alice, name="Sales 50% off", platform_type="telegram"),
        "assistant": await create_bot(
            client, alice, name="销售助手", description="包含关键词的描述", platform_type="discord"
        ),
    }
    started = await client.post(f"/api/v1/bots/{bots['sales']['id']}/start", headers=alice.headers)
    assert started.status_code == 200
    return bots


def names(page: dict[str, Any]) -> list[str]:
    return sorted(bot["name"] for bot in page["bots"])


async def test_the_list_matches_the_document_example(
    client: httpx.AsyncClient, alice: User, three_bots: dict[str, dict[str, Any]]
) -> None:
    page = await list_bots(client, alice)

    assert {"bots", "total", "limit", "offset"} <= set(page)
    assert (page["total"], page["limit"], page["offset"]) == (3, 20, 0)
    assert names(page) == ["Helpdesk", "Sales 50% off", "销售助手"]
    for item in page["bots"]:
        assert SUMMARY_FIELDS <= set(item)
        assert is_utc_timestamp(item["created_at"])
    helpdesk = next(item for item in page["bots"] if item["name"] == "Helpdesk")
    assert helpdesk["description"] == "Answers questions"
    assert helpdesk["platform_type"] == "web"
    assert helpdesk["is_active"] is False


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"search": "关键词"}, ["销售助手"]),
        ({"search": "销售"}, ["销售助手"]),
        ({"search": "help"}, ["Helpdesk"]),
        ({"search": "questions"}, ["Helpdesk"]),
        ({"search": "50%"}, ["Sales 50% off"]),
        ({"search": "%"}, ["Sales 50% off"]),
        ({"search": "_"}, []),
        ({"platform_type": "telegram"}, ["Sales 50% off"]),
        ({"platform_type": "slack"}, []),
        ({"is_active": "true"}, ["Sales 50% off"]),
        ({"is_active": "false"}, ["Helpdesk", "销售助手"]),
        ({"search": "s", "platform_type": "web", "is_active": "false"}, ["Helpdesk"]),
        # The document's own query string.
        ({"limit": 20, "offset": 0, "search": "关键词", "platform_type": "web", "is_active": "true"}, []),
    ],
)
async def test_the_list_filters_by_search_platform_and_state(
    client: httpx.AsyncClient,
    alice: User,
    three_bots: dict[str, dict[str, Any]],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    page = await list_bots(client, alice, **params)

    assert names(page) == expected
    assert page["total"] == len(expected)


async def test_the_list_pages_with_limit_and_offset(
    client: httpx.AsyncClient, alice: User, three_bots: dict[str, dict[str, Any]]
) -> None:
    first = await list_bots(client, alice, limit=2, offset=0)
    second = await list_bots(client, alice, limit=2, offset=2)
    beyond = await list_bots(client, alice, limit=2, offset=3)

    assert (first["total"], first["limit"], first["offset"], len(first["bots"])) == (3, 2, 0, 2)
    assert (second["total"], second["limit"], second["offset"], len(second["bots"])) == (3, 2, 2, 1)
    assert (beyond["total"], beyond["bots"]) == (3, [])
    seen = [bot["id"] for bot in first["bots"] + second["bots"]]
    assert sorted(seen) == sorted(bot["id"] for bot in three_bots.values())


# --- read, change, delete ---------------------------------------------------------------


async def test_an_unknown_bot_is_not_found(client: httpx.AsyncClient, alice: User) -> None:
    response = await client.get("/api/v1/bots/bot_id_123", headers=alice.headers)

    assert_error(response, 404, "NOT_FOUND")


async def test_the_document_update_example_changes_only_what_was_sent(
    client: httpx.AsyncClient, alice: User
) -> None:
    before = await create_document_bot(client, alice)
    update = {
        "name": "更新后的机器人名称",
        "description": "更新后的描述",
        "llm_config": {"provider": "openai", "model": "gpt-4", "temperature": 0.5},
    }

    response = await client.put(f"/api/v1/bots/{before['id']}", json=update, headers=alice.headers)

    assert response.status_code == 200, response.text
    after = response.json()
    assert after["name"] == "更新后的机器人名称"
    assert after["description"] == "更新后的描述"
    assert after["llm_config"]["model"] == "gpt-4"
    assert after["llm_config"]["temperature"] == 0.5
    unchanged = (
        "id",
        "user_id",
        "avatar_url",
        "platform_type",
        "platform_config",
        "knowledge_base_ids",
        "plugins",
    )
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}
    for key in ("provider", "max_tokens", "system_prompt"):
        assert after["llm_config"][key] == before["llm_config"][key]
    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["updated_at"]) >= datetime.fromisoformat(before["updated_at"])
    assert await get_bot(client, alice, before["id"]) == after


async def test_an_update_keeps_the_stored_llm_api_key(client: httpx.AsyncClient, alice: User) -> None:
    bot = await create_bot(client, alice, **document_bot([]))
    assert bot["llm_config"]["api_key_set"] is True

    after = await client.put(
        f"/api/v1/bots/{bot['id']}", json={"llm_config": {"model": "gpt-4"}}, headers=alice.headers
    )

    assert after.json()["llm_config"]["api_key_set"] is True
    assert LLM_API_KEY not in after.text


async def test_an_update_cannot_blank_out_the_name(client: httpx.AsyncClient, alice: User) -> None:
    bot = await create_bot(client, alice, name="Helpdesk")

    for body in ({"name": None}, {"name": ""}):
        response = await client.put(f"/api/v1/bots/{bot['id']}", json=body, headers=alice.headers)
        assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "name"
    assert (await get_bot(client, alice, bot["id"]))["name"] == "Helpdesk"


async def test_a_deleted_bot_is_gone(client: httpx.AsyncClient, alice: User) -> None:
    bot = await create_document_bot(client, alice)
    kept = await create_bot(client, alice, name="Kept")

    deleted = await client.delete(f"/api/v1/bots/{bot['id']}", headers=alice.headers)

    assert deleted.status_code == 200
    assert deleted.json()["success"] is True
    assert_error(await client.get(f"/api/v1/bots/{bot['id']}", headers=alice.headers), 404, "NOT_FOUND")
    assert_error(await client.delete(f"/api/v1/bots/{bot['id']}", headers=alice.headers), 404, "NOT_FOUND")
    assert [item["id"] for item in (await list_bots(client, alice))["bots"]] == [kept["id"]]
    # Its knowledge bases are the account's, not the bot's: they stay.
    bases = await client.get("/api/v1/knowledge/bases", headers=alice.headers)
    assert bases.json()["total"] == 2


# --- start, stop, status ----------------------------------------------------------------

STATUS_FIELDS = {
    "bot_id",
    "is_running",
    "is_online",
    "start_time",
    "message_count",
    "error_count",
    "last_activity",
}


async def bot_status(client: httpx.AsyncClient, user: User, bot_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/bots/{bot_id}/status", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_new_bot_is_stopped(client: httpx.AsyncClient, alice: User) -> None:
    bot = await create_bot(client, alice, name="Helpdesk")

    status = await bot_status(client, alice, bot["id"])

    assert set(status) >= STATUS_FIELDS
    assert status == {
        **status,
        "bot_id": bot["id"],
        "is_running": False,
        "is_online": False,
        "start_time": None,
        "message_count": 0,
        "error_count": 0,
        "last_activity": None,
    }


async def test_start_and_stop_answer_as_the_document_shows_and_change_the_status(
    client: httpx.AsyncClient, alice: User
) -> None:
    bot = await create_bot(client, alice, name="Helpdesk")

    started = await client.post(f"/api/v1/bots/{bot['id']}/start", headers=alice.headers)

    assert started.status_code == 200, started.text
    assert started.json()["success"] is True
    assert started.json()["bot_id"] == bot["id"]
    assert isinstance(started.json()["message"], str) and started.json()["message"]
    running = await bot_status(client, alice, bot["id"])
    assert (running["is_running"], running["is_online"]) == (True, True)
    assert is_utc_timestamp(running["start_time"])
    assert (await get_bot(client, alice, bot["id"]))["is_active"] is True
    assert names(await list_bots(client, alice, is_active="true")) == ["Helpdesk"]

    again = await client.post(f"/api/v1/bots/{bot['id']}/start", headers=alice.headers)
    assert again.status_code == 200
    assert (await bot_status(client, alice, bot["id"]))["start_time"] == running["start_time"]

    stopped = await client.post(f"/api/v1/bots/{bot['id']}/stop", headers=alice.headers)

    assert stopped.status_code == 200
    assert stopped.json()["success"] is True
    assert stopped.json()["bot_id"] == bot["id"]
    halted = await bot_status(client, alice, bot["id"])
    assert (halted["is_running"], halted["is_online"], halted["start_time"]) == (False, False, None)
    assert (await get_bot(client, alice, bot["id"]))["is_active"] is False


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("POST", "/start"), ("POST", "/stop"), ("GET", "/status"), ("PUT", ""), ("DELETE", "")],
)
async def test_every_bot_route_says_not_found_for_an_unknown_bot(
    client: httpx.AsyncClient, alice: User, method: str, suffix: str
) -> None:
    body = {"description": "x"} if method == "PUT" else None

    response = await client.request(
        method, f"/api/v1/bots/bot_missing{suffix}", json=body, headers=alice.headers
    )

    assert_error(response, 404, "NOT_FOUND")
