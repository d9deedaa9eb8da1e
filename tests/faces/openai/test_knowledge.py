"""A knowledge bot through the OpenAI face: it answers from its documents, and the sources
travel in the `tertulia` member, streamed (first chunk) or not."""

import httpx
from openai import AsyncOpenAI

from tests.faces.chatagent.test_documents import finished
from tests.faces.openai.conftest import KeyHolder

FACT = "The Quillon 4 scanner is calibrated with the grey card for 8 seconds."
QUESTION = "How many seconds does calibrating the Quillon 4 scanner take?"


async def knowledge_bot(remote: httpx.AsyncClient, holder: KeyHolder) -> str:
    headers = holder.user.headers
    base = await remote.post("/api/v1/knowledge/bases", headers=headers, json={"name": "Scanners"})
    accepted = await remote.post(
        f"/api/v1/knowledge/bases/{base.json()['id']}/documents/text",
        headers=headers,
        json={"name": "quillon.txt", "content": FACT},
    )
    assert (await finished(remote, holder.user, accepted.json()["job"]["id"]))["status"] == "done"
    linked = await remote.put(
        f"/api/v1/bots/{holder.bot_id}", headers=headers, json={"knowledge_base_ids": [base.json()["id"]]}
    )
    assert linked.status_code == 200, linked.text
    return holder.bot_id


async def test_a_knowledge_bot_answers_with_its_sources(
    remote, alice: KeyHolder, as_alice: AsyncOpenAI
) -> None:
    bot_id = await knowledge_bot(remote, alice)
    reply = await as_alice.chat.completions.create(
        model=bot_id, messages=[{"role": "user", "content": QUESTION}], max_tokens=30
    )
    assert "8" in (reply.choices[0].message.content or "")
    [source] = reply.model_extra["tertulia"]["sources"]
    assert source["document_name"] == "quillon.txt" and source["content"] == FACT and source["score"] > 0.8


async def test_streamed_sources_arrive_in_the_first_chunk(
    remote, alice: KeyHolder, as_alice: AsyncOpenAI
) -> None:
    bot_id = await knowledge_bot(remote, alice)
    stream = await as_alice.chat.completions.create(
        model=bot_id, messages=[{"role": "user", "content": QUESTION}], max_tokens=30, stream=True
    )
    chunks = [chunk async for chunk in stream]
    [source] = chunks[0].model_extra["tertulia"]["sources"]
    assert source["document_name"] == "quillon.txt"
    assert "8" in "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


async def test_a_question_its_documents_do_not_answer_gets_the_bots_fixed_reply(
    remote, alice: KeyHolder, as_alice: AsyncOpenAI
) -> None:
    bot_id = await knowledge_bot(remote, alice)
    reply = await as_alice.chat.completions.create(
        model=bot_id, messages=[{"role": "user", "content": "Who painted the Mona Lisa?"}]
    )
    assert reply.choices[0].message.content == "I could not find anything about that in my documents."
    assert reply.model_extra["tertulia"]["sources"] == []
    assert reply.usage is not None and reply.usage.total_tokens == 0
