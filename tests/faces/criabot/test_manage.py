"""CriaBot bot management, example by example from criabot-api.md, and its keys."""

import re

import httpx

from tests.faces.criabot.conftest import Owner, assert_envelope, catalog, create_bot


async def test_models_are_numbered_once_and_listed_through_chatagent(
    client: httpx.AsyncClient, cria: Owner
) -> None:
    numbers = await catalog(client, cria)
    assert ("chat", "qwen2.5-coder-0.5b-instruct") in numbers
    assert ("embedding", "multilingual-e5-small") in numbers
    assert ("rerank", "overlap-reranker") in numbers
    assert all(isinstance(number, int) and number >= 1 for number in numbers.values())
    assert await catalog(client, cria) == numbers  # stable
    # A provider configured for the account adds its well-known models, numbered after.
    await client.put("/api/v1/providers/openai", headers=cria.user.headers, json={"api_key": "sk-test"})
    more = await catalog(client, cria)
    assert ("chat", "gpt-4o-mini") in more and min(more[key] for key in more if key not in numbers) > max(
        numbers.values()
    )
    assert {key: more[key] for key in numbers} == numbers


async def test_the_documents_create_about_update_and_delete(client: httpx.AsyncClient, cria: Owner) -> None:
    numbers = await catalog(client, cria)
    created = await create_bot(
        client,
        cria,
        "test-bot-gemini",
        llm_model_id=numbers[("chat", "qwen2.5-coder-0.5b-instruct")],
        embedding_model_id=numbers[("embedding", "multilingual-e5-small")],
        rerank_model_id=numbers[("rerank", "overlap-reranker")],
    )
    assert created["message"] == "Successfully created the bot & their indexes."
    assert created["bot_api_key"]

    about = assert_envelope(await client.get("/bots/test-bot-gemini/manage/about", headers=cria.headers))
    info, params = about["about"]["info"], about["about"]["params"]
    assert info["name"] == "test-bot-gemini" and isinstance(info["id"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", info["created"])
    assert params["bot_id"] == params["id"] == info["id"]
    assert set(params) == {
        "max_input_tokens", "max_reply_tokens", "temperature", "top_p", "top_k", "min_k", "top_n", "min_n",
        "llm_generate_related_prompts", "no_context_message", "no_context_use_message",
        "no_context_llm_guess", "system_message", "bot_id", "id",
    }  # fmt: skip

    # The same bot through ChatAgent: its toolbox and its own knowledge base's embedder.
    bots = (await client.get("/api/v1/bots/", headers=cria.user.headers)).json()["bots"]
    [listed] = [item for item in bots if item["name"] == "test-bot-gemini"]
    bot = (await client.get(f"/api/v1/bots/{listed['id']}", headers=cria.user.headers)).json()
    [base_id] = bot["knowledge_base_ids"]
    base = (await client.get(f"/api/v1/knowledge/bases/{base_id}", headers=cria.user.headers)).json()
    assert base["embedding_model"] == "local/multilingual-e5-small"

    changes = {
        "max_input_tokens": 2000,
        "max_reply_tokens": 1024,
        "temperature": 0.9,
        "top_p": 0.0,
        "top_k": 10,
        "min_k": 0.5,
        "top_n": 3,
        "min_n": 0.7,
        "llm_generate_related_prompts": True,
        "no_context_message": "Sorry, I'm not sure about that.",
        "no_context_use_message": False,
        "no_context_llm_guess": False,
        "system_message": "You are a pirate.",
    }
    updated = await client.patch("/bots/test-bot-gemini/manage/update", headers=cria.headers, json=changes)
    assert assert_envelope(updated)["message"] == "Successfully updated the bot."
    params = assert_envelope(await client.get("/bots/test-bot-gemini/manage/about", headers=cria.headers))[
        "about"
    ]["params"]
    assert {key: params[key] for key in changes} == changes
    cleared = await client.patch(
        "/bots/test-bot-gemini/manage/update", headers=cria.headers, json={"system_message": None}
    )
    assert_envelope(cleared)
    about = assert_envelope(await client.get("/bots/test-bot-gemini/manage/about", headers=cria.headers))
    assert about["about"]["params"]["system_message"] is None

    deleted = await client.delete("/bots/test-bot-gemini/manage/delete", headers=cria.headers)
    assert assert_envelope(deleted)["message"] == "Successfully deleted the bot."
    gone = await client.get("/bots/test-bot-gemini/manage/about", headers=cria.headers)
    assert_envelope(gone, 404, "NOT_FOUND")
    assert (
        await client.get(f"/api/v1/knowledge/bases/{base_id}", headers=cria.user.headers)
    ).status_code == 404


async def test_bad_model_numbers_and_duplicate_names_are_refused_with_nothing_stored(
    client: httpx.AsyncClient, cria: Owner
) -> None:
    numbers = await catalog(client, cria)
    unknown = await client.post("/bots/b1/manage/create", headers=cria.headers, json={"llm_model_id": 99999})
    assert_envelope(unknown, 404, "NOT_FOUND")
    wrong_kind = await client.post(
        "/bots/b1/manage/create",
        headers=cria.headers,
        json={"llm_model_id": numbers[("embedding", "multilingual-e5-small")]},
    )
    assert_envelope(wrong_kind, 400, "ERROR")
    not_a_number = await client.post(
        "/bots/b1/manage/create", headers=cria.headers, json={"llm_model_id": "one"}
    )
    assert_envelope(not_a_number, 400, "ERROR")
    assert_envelope(await client.get("/bots/b1/manage/about", headers=cria.headers), 404, "NOT_FOUND")

    await create_bot(client, cria, "b1")
    again = await client.post("/bots/b1/manage/create", headers=cria.headers, json={})
    assert_envelope(again, 409, "DUPLICATE")
    keys = (await client.get("/api/v1/auth/api-keys", headers=cria.user.headers)).json()["api_keys"]
    assert len([key for key in keys if key["bot_id"]]) == 1  # one bot, one bot key


async def test_keys_reach_what_they_should_and_nothing_else(
    client: httpx.AsyncClient, cria: Owner, other: Owner
) -> None:
    mine = await create_bot(client, cria, "mine")
    await create_bot(client, cria, "sibling")
    bot_key = {"X-API-Key": mine["bot_api_key"]}

    assert_envelope(await client.get("/bots/mine/manage/about", headers=bot_key))
    assert_envelope(await client.get("/bots/mine/manage/about", params={"api_key": mine["bot_api_key"]}))
    # A bot's key reaches that bot only; it cannot make bots.
    assert_envelope(await client.get("/bots/sibling/manage/about", headers=bot_key), 404, "NOT_FOUND")
    assert_envelope(
        await client.post("/bots/new/manage/create", headers=bot_key, json={}), 403, "UNAUTHORIZED"
    )
    # Another account's key: the bot does not exist for it.
    assert_envelope(await client.get("/bots/mine/manage/about", headers=other.headers), 404, "NOT_FOUND")
    assert_envelope(await client.delete("/bots/mine/manage/delete", headers=other.headers), 404, "NOT_FOUND")
    # No key, a wrong key.
    assert_envelope(await client.get("/bots/mine/manage/about"), 401, "UNAUTHORIZED")
    assert_envelope(
        await client.get("/bots/mine/manage/about", headers={"X-API-Key": "tk_wrong"}), 401, "UNAUTHORIZED"
    )
    assert_envelope(await client.get("/bots/mine/manage/about", headers=cria.headers))


async def test_criabot_and_bytchat_paths_never_cross_whatever_the_bot_is_called(
    client: httpx.AsyncClient, cria: Owner
) -> None:
    for name in ("chats", "manage", "documents", "questions", "start"):
        assert_envelope(await client.post(f"/bots/{name}/manage/create", headers=cria.headers, json={}))
        about = assert_envelope(await client.get(f"/bots/{name}/manage/about", headers=cria.headers))
        assert about["about"]["info"]["name"] == name
        listed = assert_envelope(await client.get(f"/bots/{name}/documents/list", headers=cria.headers))
        assert listed["document_names"] == []
    # Bytchat's /bots/{bot_id} with a bot id that looks like CriaBot's words: Bytchat answers.
    bytchat = await client.put("/bots/chats", headers=cria.user.headers, json={"system_prompt": "x"})
    assert bytchat.status_code == 404 and bytchat.json() == {"detail": "bot not found"}
    # CriaBot's paths without CriaBot's key: CriaBot's envelope, never Bytchat's shape.
    assert_envelope(await client.post("/bots/chats/start", headers=cria.user.headers), 401, "UNAUTHORIZED")
    started = assert_envelope(await client.post("/bots/chats/start", headers=cria.headers))
    assert started["chat_id"]


async def test_health_docs_and_openapi_as_the_document_says(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["uptime"] >= 0 and body["version"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/bots/{bot_name}/manage/create",
        "/bots/chats/{chat_id}/send",
        "/bots/{bot_name}/questions/list",
    ):
        assert path in spec["paths"]
