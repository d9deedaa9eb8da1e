"""Documents in a knowledge base through ChatAgent: uploaded, ingested by a background job,
searched (hybrid, vector, full text), cited by the bot, replaced and deleted."""

import asyncio
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from tertulia.store.session import Database
from tertulia.store.tables import Chunk, Document
from tests.faces.chatagent.conftest import User

FACTS = {
    "zorvex.txt": "The Zorvex 9 router is configured from the blue panel. Hold the reset key for 12 seconds.",
    "pago.md": "# Pagos\n\nLa factura de Tertulia se paga el día 7 de cada mes con tarjeta o transferencia.",
    "机器人.txt": "机器人配置步骤：先在控制台创建机器人，然后上传知识库文档，最后点击发布按钮。",
}


async def new_base(client: httpx.AsyncClient, user: User, **settings: Any) -> str:
    response = await client.post(
        "/api/v1/knowledge/bases",
        headers=user.headers,
        json={"name": settings.pop("name", "Manuals"), **settings},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def upload(
    client: httpx.AsyncClient, user: User, base_id: str, name: str, content: bytes | str, **metadata: Any
) -> dict[str, Any]:
    data = content.encode() if isinstance(content, str) else content
    response = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents",
        headers=user.headers,
        files={"file": (name, io.BytesIO(data), "application/octet-stream")},
        data={"metadata": json.dumps(metadata)} if metadata else None,
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def finished(client: httpx.AsyncClient, user: User, job_id: str) -> dict[str, Any]:
    pause = 0.02
    for _ in range(200):  # backing off, so that polling stays within the plan's rate limit
        response = await client.get(f"/api/v1/jobs/{job_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("done", "failed"):
            return dict(job)
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.5)
    raise AssertionError(f"job {job_id} did not finish")


async def search(
    client: httpx.AsyncClient, user: User, base_id: str, query: str, **options: Any
) -> list[dict[str, Any]]:
    response = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/search", headers=user.headers, json={"query": query, **options}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["results"]) and body["query_time"] >= 0
    return list(body["results"])


async def test_an_upload_is_ingested_in_the_background_and_found(client, alice) -> None:
    base_id = await new_base(client, alice)
    accepted = await upload(
        client, alice, base_id, "zorvex.txt", FACTS["zorvex.txt"], title="Router manual", version="1.0"
    )
    assert accepted["status"] == "queued" and accepted["job"]["status"] in ("queued", "running", "done")
    job = await finished(client, alice, accepted["job"]["id"])
    assert job["status"] == "done", job
    assert job["progress"] == 1.0 and {"parse", "chunk", "embed", "store"} <= set(job["stages"])

    document = (
        await client.get(
            f"/api/v1/knowledge/bases/{base_id}/documents/{accepted['id']}", headers=alice.headers
        )
    ).json()
    assert document["status"] == "ready" and document["chunk_count"] == 1
    [hit] = await search(client, alice, base_id, "How do I reset the Zorvex router?", top_k=3)
    assert "12 seconds" in hit["content"]
    assert hit["metadata"]["source"] == "zorvex.txt" and hit["metadata"]["title"] == "Router manual"
    assert hit["metadata"]["version"] == "1.0" and hit["document_id"] == accepted["id"]


async def test_spanish_and_chinese_are_found_by_keyword_and_by_meaning(client, alice) -> None:
    base_id = await new_base(client, alice)
    for name, content in FACTS.items():
        accepted = await upload(client, alice, base_id, name, content)
        assert (await finished(client, alice, accepted["job"]["id"]))["status"] == "done"
    cases = [
        ("factura", "pago.md"),  # a Spanish keyword
        ("¿Cuándo se paga la factura?", "pago.md"),
        ("机器人", "机器人.txt"),  # a Chinese word inside a sentence with no spaces
        ("如何配置机器人？", "机器人.txt"),
        ("Zorvex", "zorvex.txt"),
    ]
    for query, expected in cases:
        for mode in ("text", "vector", "hybrid"):
            results = await search(client, alice, base_id, query, top_k=1, mode=mode)
            assert results and results[0]["metadata"]["source"] == expected, (query, mode, results)


async def test_filters_and_threshold_narrow_the_results(client, alice) -> None:
    base_id = await new_base(client, alice)
    for name, category in (("a.txt", "billing"), ("b.txt", "setup")):
        content = f"Tertulia {category} guide: everything about {category} in one page."
        await finished(
            client,
            alice,
            (await upload(client, alice, base_id, name, content, category=category))["job"]["id"],
        )
    only = await search(client, alice, base_id, "Tertulia guide", top_k=5, filters={"category": "setup"})
    assert [hit["metadata"]["source"] for hit in only] == ["b.txt"]
    assert await search(client, alice, base_id, "Tertulia guide", score_threshold=0.9999) == []


async def test_reuploading_replaces_the_chunks_and_deleting_leaves_no_orphans(
    client, alice, database: Database
) -> None:
    base_id = await new_base(client, alice)
    first = await upload(client, alice, base_id, "notes.txt", "The launch code is amber falcon.")
    await finished(client, alice, first["job"]["id"])
    second = await upload(client, alice, base_id, "notes.txt", "The launch code is violet heron.")
    assert second["id"] == first["id"]  # the same document, a new version
    await finished(client, alice, second["job"]["id"])
    [hit] = await search(client, alice, base_id, "launch code", top_k=5)
    assert "violet heron" in hit["content"]
    async with database.session() as session:
        assert await session.scalar(select(func.count(Chunk.id))) == 1

    deleted = await client.delete(
        f"/api/v1/knowledge/bases/{base_id}/documents/{first['id']}", headers=alice.headers
    )
    assert deleted.status_code == 200
    assert await search(client, alice, base_id, "launch code") == []
    async with database.session() as session:
        assert await session.scalar(select(func.count(Chunk.id))) == 0
        if database.url.startswith("sqlite"):  # the full-text index forgot it too
            assert (await session.execute(text("SELECT count(*) FROM chunks_fts"))).scalar() == 0


async def test_deleting_a_knowledge_base_removes_its_documents_and_chunks(
    client, alice, database: Database
) -> None:
    base_id = await new_base(client, alice)
    await finished(
        client, alice, (await upload(client, alice, base_id, "x.txt", "Some words to index."))["job"]["id"]
    )
    assert (
        await client.delete(f"/api/v1/knowledge/bases/{base_id}", headers=alice.headers)
    ).status_code == 200
    async with database.session() as session:
        assert await session.scalar(select(func.count(Document.id))) == 0
        assert await session.scalar(select(func.count(Chunk.id))) == 0


def zip_bomb() -> bytes:
    """A Word file with one part that expands a thousandfold."""
    from tests.core.knowledge.samples import make_docx, with_extra_entry

    return with_extra_entry(make_docx(), "word/media/padding.xml", b"0" * 40_000_000)


@pytest.mark.parametrize(
    ("name", "content", "status", "words"),
    [
        ("empty.txt", b"   \n ", 400, "empty"),
        ("program.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", 400, "supported types"),
        ("report.pdf", b"this is not a PDF at all", 400, "not a PDF"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", 400, "could not read the PDF"),
        ("bomb.docx", None, 400, "zip bomb"),
    ],
)
async def test_bad_files_are_refused_at_once_and_store_nothing(
    client, alice, database: Database, name: str, content: bytes | None, status: int, words: str
) -> None:
    base_id = await new_base(client, alice)
    response = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents",
        headers=alice.headers,
        files={
            "file": (
                name,
                io.BytesIO(content if content is not None else zip_bomb()),
                "application/octet-stream",
            )
        },
    )
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    async with database.session() as session:
        assert await session.scalar(select(func.count(Document.id))) == 0
        assert await session.scalar(select(func.count(Chunk.id))) == 0


async def test_a_file_that_fails_while_parsing_fails_its_job_clearly(
    client, alice, database: Database
) -> None:
    """A scanned PDF opens fine but holds no text: known only once read, in the background."""
    from tests.core.knowledge.samples import make_pdf

    base_id = await new_base(client, alice)
    accepted = await upload(client, alice, base_id, "scan.pdf", make_pdf([""]))
    job = await finished(client, alice, accepted["job"]["id"])
    assert job["status"] == "failed" and "contains no text" in job["error"], job
    listed = await client.get(f"/api/v1/knowledge/bases/{base_id}/documents", headers=alice.headers)
    document = listed.json()["documents"][0]
    assert document["status"] == "failed" and "contains no text" in document["error"]
    async with database.session() as session:
        assert await session.scalar(select(func.count(Chunk.id))) == 0


async def test_another_account_cannot_reach_documents_jobs_or_chunks(client, alice, bob) -> None:
    base_id = await new_base(client, alice)
    accepted = await upload(client, alice, base_id, "secret.txt", "The vault combination is 4-8-15-16.")
    await finished(client, alice, accepted["job"]["id"])
    for method, path, body in [
        ("GET", f"/api/v1/knowledge/bases/{base_id}/documents", None),
        ("GET", f"/api/v1/knowledge/bases/{base_id}/documents/{accepted['id']}", None),
        ("DELETE", f"/api/v1/knowledge/bases/{base_id}/documents/{accepted['id']}", None),
        ("POST", f"/api/v1/knowledge/bases/{base_id}/search", {"query": "vault combination"}),
        ("POST", f"/api/v1/knowledge/bases/{base_id}/documents/text", {"name": "x", "content": "y"}),
        ("GET", f"/api/v1/jobs/{accepted['job']['id']}", None),
    ]:
        response = await client.request(method, path, headers=bob.headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
    # Bob's own bases never return Alice's chunks.
    bob_base = await new_base(client, bob)
    assert await search(client, bob, bob_base, "vault combination 4-8-15-16") == []


async def test_text_and_question_answer_documents(client, alice) -> None:
    base_id = await new_base(client, alice)
    note = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents/text",
        headers=alice.headers,
        json={
            "name": "hours",
            "content": "The office opens at 9:30 on weekdays.",
            "metadata": {"team": "ops"},
        },
    )
    qa = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents/qa",
        headers=alice.headers,
        json={
            "name": "faq",
            "pairs": [{"question": "Can I bring my dog?", "answer": "Yes, dogs are welcome on Fridays."}],
        },
    )
    for response in (note, qa):
        assert response.status_code == 202, response.text
        assert (await finished(client, alice, response.json()["job"]["id"]))["status"] == "done"
    [hit] = await search(client, alice, base_id, "Are pets allowed?", top_k=1)
    assert hit["content"] == "Yes, dogs are welcome on Fridays."  # the answer comes back
    assert hit["metadata"]["question"] == "Can I bring my dog?"
    [hours] = await search(client, alice, base_id, "When does the office open?", top_k=1)
    assert "9:30" in hours["content"] and hours["metadata"]["team"] == "ops"


async def test_a_url_to_this_machine_is_refused(client, alice) -> None:
    base_id = await new_base(client, alice)
    response = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents/url",
        headers=alice.headers,
        json={"url": "http://127.0.0.1:9/secret"},
    )
    assert response.status_code == 400 and "127.0.0.1" in response.json()["error"]["message"]
    listed = await client.get(f"/api/v1/knowledge/bases/{base_id}/documents", headers=alice.headers)
    assert listed.json()["total"] == 0  # refused at once: nothing stored


async def test_the_bot_answers_from_its_documents_and_cites_them(client, alice) -> None:
    base_id = await new_base(client, alice)
    await finished(
        client, alice, (await upload(client, alice, base_id, "zorvex.txt", FACTS["zorvex.txt"]))["job"]["id"]
    )
    bot = await client.post(
        "/api/v1/bots/",
        headers=alice.headers,
        json={
            "name": "Support",
            "knowledge_base_ids": [base_id],
            "llm_config": {"temperature": 0, "max_tokens": 40},
        },
    )
    conversation = await client.post(
        "/api/v1/conversations/", headers=alice.headers, json={"bot_id": bot.json()["id"]}
    )
    conversation_id = conversation.json()["id"]
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=alice.headers,
        json={"content": "How many seconds must I hold the reset key on the Zorvex 9?"},
    )
    assert response.status_code == 200, response.text
    reply = response.json()["bot_response"]
    assert "12" in reply["content"]
    [source] = reply["metadata"]["sources"]
    assert source["document_name"] == "zorvex.txt" and "12 seconds" in source["content"]
    history = (
        await client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=alice.headers)
    ).json()
    assert history["messages"][-1]["metadata"]["sources"] == reply["metadata"]["sources"]

    # Nothing in the documents: the bot's fixed answer, without a model call.
    unknown = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=alice.headers,
        json={"content": "What is the capital of Mongolia?"},
    )
    body = unknown.json()["bot_response"]
    assert body["content"] == "I could not find anything about that in my documents."
    assert body["metadata"]["sources"] == [] and body["metadata"]["no_context"] is True


async def test_a_question_in_another_language_is_not_derailed_by_chance_words(client, alice) -> None:
    """The full-text leg matches a Spanish question's words in an unrelated Spanish text;
    the default fusion still puts the English document that answers it first."""
    base_id = await new_base(client, alice)
    documents = {
        "library.txt": "The library opens at 8:00 on weekdays and at 10:00 on Saturdays.",
        "churros.txt": "Los sábados la abuela hace churros a la hora del desayuno.",
    }
    for name, content in documents.items():
        await finished(client, alice, (await upload(client, alice, base_id, name, content))["job"]["id"])
    question = "¿A qué hora abre la biblioteca los sábados?"
    [text_first, *_] = await search(client, alice, base_id, question, mode="text")
    assert text_first["metadata"]["source"] == "churros.txt"  # the chance words
    [first, *_] = await search(client, alice, base_id, question)
    assert first["metadata"]["source"] == "library.txt"
