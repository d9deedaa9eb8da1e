"""A CriaBot bot's documents (JSON nodes) and questions (with their answer), from the
document's examples; indexed before the reply, replaced, deleted, and refused when wrong."""

import httpx
import pytest

from tests.faces.criabot.conftest import Owner, assert_envelope, create_bot, upload_nodes

DOCUMENT = {
    "file_name": "my-test-document.json",
    "file_contents": {"nodes": [{"text": "This is a test node.", "metadata": {}}], "assets": []},
    "file_metadata": {},
}
UPDATED_DOCUMENT = {
    "file_name": "my-test-document.json",
    "file_contents": {
        "nodes": [{"text": "This is the updated content of the document.", "metadata": {}}],
        "assets": [],
    },
    "file_metadata": {},
}
QUESTION = {
    "file_name": "my-test-question.json",
    "file_contents": {"questions": ["What is the capital of France?"], "answer": "Paris"},
    "file_metadata": {},
}
UPDATED_QUESTION = {
    "file_name": "my-test-question.json",
    "file_contents": {
        "questions": ["What is the capital of France?", "What is the largest city in France?"],
        "answer": "Paris",
    },
    "file_metadata": {},
}


async def names(client: httpx.AsyncClient, who: Owner, bot: str, kind: str) -> list[str]:
    listed = assert_envelope(await client.get(f"/bots/{bot}/{kind}/list", headers=who.headers))
    assert listed["message"] == "Successfully retrieved all documents names."
    return list(listed["document_names"])


async def test_the_documents_upload_list_update_and_delete(client: httpx.AsyncClient, cria: Owner) -> None:
    await create_bot(client, cria, "my-new-bot-name")
    uploaded = assert_envelope(
        await client.post("/bots/my-new-bot-name/documents/upload", headers=cria.headers, json=DOCUMENT)
    )
    assert uploaded["message"].startswith("Successfully added to the index.")
    assert uploaded["document_name"] == "my-test-document.json" and uploaded["token_usage"] >= 1
    assert await names(client, cria, "my-new-bot-name", "documents") == ["my-test-document.json"]
    assert await names(client, cria, "my-new-bot-name", "questions") == []

    updated = assert_envelope(
        await client.patch(
            "/bots/my-new-bot-name/documents/update", headers=cria.headers, json=UPDATED_DOCUMENT
        )
    )
    assert updated["message"] == "Successfully updated the document."
    assert updated["token_usage"] > uploaded["token_usage"]

    # Through ChatAgent the bot's own knowledge base holds the new text only.
    bots = (await client.get("/api/v1/bots/", headers=cria.user.headers)).json()["bots"]
    bot = (await client.get(f"/api/v1/bots/{bots[0]['id']}", headers=cria.user.headers)).json()
    [base_id] = bot["knowledge_base_ids"]
    found = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/search", headers=cria.user.headers, json={"query": "test node"}
    )
    assert [hit["content"] for hit in found.json()["results"]] == [
        "This is the updated content of the document."
    ]

    deleted = await client.delete(
        "/bots/my-new-bot-name/documents/delete",
        headers=cria.headers,
        params={"document_name": "my-test-document.json"},
    )
    assert assert_envelope(deleted)["message"] == "Successfully deleted the documents from the index."
    assert await names(client, cria, "my-new-bot-name", "documents") == []


async def test_the_questions_upload_list_update_and_delete(client: httpx.AsyncClient, cria: Owner) -> None:
    await create_bot(client, cria, "my-new-bot-name")
    uploaded = assert_envelope(
        await client.post("/bots/my-new-bot-name/questions/upload", headers=cria.headers, json=QUESTION)
    )
    assert uploaded["document_name"] == "my-test-question.json" and uploaded["token_usage"] >= 1
    assert await names(client, cria, "my-new-bot-name", "questions") == ["my-test-question.json"]
    assert await names(client, cria, "my-new-bot-name", "documents") == []
    updated = assert_envelope(
        await client.patch(
            "/bots/my-new-bot-name/questions/update", headers=cria.headers, json=UPDATED_QUESTION
        )
    )
    assert updated["token_usage"] > uploaded["token_usage"]
    deleted = await client.delete(
        "/bots/my-new-bot-name/questions/delete",
        headers=cria.headers,
        params={"document_name": "my-test-question.json"},
    )
    assert_envelope(deleted)
    assert await names(client, cria, "my-new-bot-name", "questions") == []


async def test_wrong_content_is_refused_in_the_envelope_and_nothing_is_half_stored(
    client: httpx.AsyncClient, cria: Owner, other: Owner
) -> None:
    await create_bot(client, cria, "bot")
    await upload_nodes(client, cria, "bot", "kept.json", "The original text stays.")
    cases = [
        (
            "post",
            "/bots/bot/documents/upload",
            {"json": {**DOCUMENT, "file_name": "kept.json"}},
            409,
            "DUPLICATE",
        ),
        (
            "patch",
            "/bots/bot/documents/update",
            {"json": {**DOCUMENT, "file_name": "nope.json"}},
            404,
            "NOT_FOUND",
        ),
        ("post", "/bots/bot/documents/upload", {"json": {"file_name": "x.json"}}, 400, "ERROR"),
        (
            "post",
            "/bots/bot/documents/upload",
            {"json": {"file_name": "x.json", "file_contents": {"nodes": [{"metadata": {}}]}}},
            400,
            "ERROR",
        ),
        (
            "post",
            "/bots/bot/documents/upload",
            {"json": {"file_name": "x.json", "file_contents": {"nodes": [{"text": "   ", "metadata": {}}]}}},
            400,
            "ERROR",
        ),
        (
            "post",
            "/bots/bot/questions/upload",
            {"json": {**QUESTION, "file_contents": {"answer": "x"}}},
            400,
            "ERROR",
        ),
        ("delete", "/bots/bot/documents/delete", {}, 400, "ERROR"),
        (
            "delete",
            "/bots/bot/documents/delete",
            {"params": {"document_name": "nope.json"}},
            404,
            "NOT_FOUND",
        ),
        (
            "delete",
            "/bots/bot/questions/delete",
            {"params": {"document_name": "kept.json"}},
            404,
            "NOT_FOUND",
        ),
        ("post", "/bots/ghost/documents/upload", {"json": DOCUMENT}, 404, "NOT_FOUND"),
    ]
    for method, path, kwargs, status, code in cases:
        response = await client.request(method.upper(), path, headers=cria.headers, **kwargs)
        assert_envelope(response, status, code)
    # Another account's key sees no such bot, and changes nothing.
    response = await client.post("/bots/bot/documents/upload", headers=other.headers, json=DOCUMENT)
    assert_envelope(response, 404, "NOT_FOUND")
    assert await names(client, cria, "bot", "documents") == ["kept.json"]


async def test_an_oversized_upload_is_refused(make_client, tmp_path) -> None:
    from tests.faces.criabot.conftest import owner

    client = await make_client(max_upload_bytes=4096)
    cria = await owner(client, "cria")
    await create_bot(client, cria, "bot")
    body = {**DOCUMENT, "file_contents": {"nodes": [{"text": "word " * 2000, "metadata": {}}], "assets": []}}
    response = await client.post("/bots/bot/documents/upload", headers=cria.headers, json=body)
    assert_envelope(response, 413, "ERROR")
    assert await names(client, cria, "bot", "documents") == []


async def test_content_still_being_indexed_when_the_wait_runs_out_is_a_202(
    client: httpx.AsyncClient, cria: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tertulia.faces.criabot import routes

    await create_bot(client, cria, "slow")
    monkeypatch.setattr(routes, "INDEX_WAIT_SECONDS", 0.0)
    response = await client.post("/bots/slow/documents/upload", headers=cria.headers, json=DOCUMENT)
    body = assert_envelope(response, 202, "SUCCESS")
    assert body["document_name"] == "my-test-document.json" and body["token_usage"] == 0
    assert "still being indexed" in body["message"]
