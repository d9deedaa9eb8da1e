"""Every supported type, uploaded to a bot's knowledge base, answers a question about a
fact that appears only in it, and the answer cites it; and an ingestion cut short by a
restart finishes on the next start, without duplicates."""

import asyncio
import csv
import io
import json
from typing import Any

import docx
import httpx
import openpyxl
from sqlalchemy import func, select

from tertulia.app import create_app
from tertulia.settings import Settings
from tertulia.store.session import Database
from tertulia.store.tables import Chunk, Job
from tests.core.knowledge.samples import make_pdf
from tests.faces.chatagent.conftest import sign_up
from tests.faces.chatagent.test_documents import finished, new_base, upload


def word_file(text: str) -> bytes:
    document = docx.Document()
    document.add_heading("Warehouse notes", 1)
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def excel_file(row: list[str]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Item", "Fact"])
    sheet.append(["filler", "nothing to see here"])
    sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_file(row: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Item", "Fact"])
    writer.writerow(row)
    return out.getvalue().encode()


# name → (content, question, what the answer must contain)
DOCUMENTS: dict[str, tuple[bytes, str, str]] = {
    "lamp.pdf": (
        make_pdf(["The Lumora desk lamp uses a bulb of exactly 37 watts."]),
        "How many watts is the bulb of the Lumora desk lamp?",
        "37",
    ),
    "forklift.docx": (
        word_file("The Brontor forklift can lift at most 2950 kilograms."),
        "How many kilograms can the Brontor forklift lift?",
        "2950",
    ),
    "kettle.xlsx": (
        excel_file(["Vexa kettle", "The Vexa kettle boils water in 94 seconds."]),
        "In how many seconds does the Vexa kettle boil water?",
        "94",
    ),
    "drone.csv": (
        csv_file(["Skylar drone", "The Skylar drone flies for 58 minutes on one battery."]),
        "How many minutes does the Skylar drone fly on one battery?",
        "58",
    ),
    "boat.html": (
        b"<html><head><title>Boats</title><script>var fact = 'The Marlo boat seats 99 people';</script>"
        b"<style>p{color:red}</style></head><body><nav>Menu</nav>"
        b"<h1>The Marlo boat</h1><p>The Marlo boat seats 14 people.</p></body></html>",
        "How many people does the Marlo boat seat?",
        "14",
    ),
    "tent.md": (
        b"# Camping\n\n## Tents\n\nThe Orvik tent weighs 3.2 kilograms packed.\n",
        "How much does the Orvik tent weigh packed?",
        "3.2",
    ),
    "bike.json": (
        json.dumps({"product": {"name": "Tarvo bike", "fact": "The Tarvo bike has 27 gears."}}).encode(),
        "How many gears does the Tarvo bike have?",
        "27",
    ),
}


async def ask(
    client: httpx.AsyncClient, headers: dict[str, str], conversation_id: str, question: str
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", headers=headers, json={"content": question}
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["bot_response"])


async def test_each_type_answers_a_question_only_it_can_answer_and_is_cited(client, alice) -> None:
    base_id = await new_base(client, alice)
    for name, (content, _question, _fact) in DOCUMENTS.items():
        job = await finished(
            client, alice, (await upload(client, alice, base_id, name, content))["job"]["id"]
        )
        assert job["status"] == "done", (name, job)
    bot = await client.post(
        "/api/v1/bots/",
        headers=alice.headers,
        json={
            "name": "Catalogue",
            "knowledge_base_ids": [base_id],
            "llm_config": {"temperature": 0, "max_tokens": 40},
        },
    )
    conversation = await client.post(
        "/api/v1/conversations/", headers=alice.headers, json={"bot_id": bot.json()["id"]}
    )
    for name, (_content, question, fact) in DOCUMENTS.items():
        # A fresh conversation per question: earlier answers must not help.
        conversation = await client.post(
            "/api/v1/conversations/", headers=alice.headers, json={"bot_id": bot.json()["id"]}
        )
        reply = await ask(client, alice.headers, conversation.json()["id"], question)
        sources = reply["metadata"]["sources"]
        assert sources and sources[0]["document_name"] == name, (name, sources)
        assert fact in sources[0]["content"]
        assert fact in reply["content"], (name, reply["content"])
    # The script's decoy never reached the index.
    found = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/search",
        headers=alice.headers,
        json={"query": "99 people", "mode": "text"},
    )
    assert all("99" not in hit["content"] for hit in found.json()["results"])


async def test_an_ingestion_cut_short_by_a_restart_finishes_once(database: Database, tmp_path) -> None:
    settings = Settings(database_url=database.url, rate_limit_plans={"standard": "100000/minute"})
    long_text = "\n\n".join(
        f"Paragraph {n}: the inventory of aisle {n} lists {n * 7} boxes of assorted parts and tools."
        for n in range(400)
    )

    first = create_app(settings)
    lifespan = first.router.lifespan_context(first)
    await lifespan.__aenter__()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://first") as client:
        alice = await sign_up(client, "alice")
        base_id = await new_base(client, alice, chunk_size=64, chunk_overlap=0)  # many batches to embed
        accepted = await upload(client, alice, base_id, "inventory.txt", long_text)
        job_id = accepted["job"]["id"]
        deadline = asyncio.get_running_loop().time() + 120
        while True:  # wait until it is embedding, then stop the server under it
            job = (await client.get(f"/api/v1/jobs/{job_id}", headers=alice.headers)).json()
            if job["stage"] == "embed" and job["progress"] < 0.8:
                break
            assert job["status"] == "running" or job["status"] == "queued", job
            assert asyncio.get_running_loop().time() < deadline, f"the job never got to embedding: {job}"
            await asyncio.sleep(0.02)
    await lifespan.__aexit__(None, None, None)
    async with database.session() as session:
        stopped = await session.get(Job, job_id)
        assert stopped is not None and stopped.status == "running"
        assert await session.scalar(select(func.count(Chunk.id))) == 0  # nothing half-written

    second = create_app(settings)
    lifespan = second.router.lifespan_context(second)
    await lifespan.__aenter__()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=second), base_url="http://second"
        ) as client:
            job = await finished(client, alice, job_id)
            assert job["status"] == "done", job
            document = (
                await client.get(f"/api/v1/knowledge/bases/{base_id}/documents", headers=alice.headers)
            ).json()
            chunk_count = document["documents"][0]["chunk_count"]
            assert document["documents"][0]["status"] == "ready" and chunk_count > 5
            hits = await client.post(
                f"/api/v1/knowledge/bases/{base_id}/search",
                headers=alice.headers,
                json={"query": "aisle 321 boxes", "mode": "text", "top_k": 3},
            )
            assert "aisle 321 lists 2247 boxes" in hits.json()["results"][0]["content"]
    finally:
        await lifespan.__aexit__(None, None, None)
    async with database.session() as session:
        assert await session.scalar(select(func.count(Chunk.id))) == chunk_count
        resumed = await session.get(Job, job_id)
        assert resumed is not None and resumed.attempts == 2 and resumed.payload is None
