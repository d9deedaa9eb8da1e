"""A question asked again is not embedded again: its vector is kept (in memory, or in Redis
under the scale-out stack), for its account only. The embedding model is the OpenAI-compatible
stand-in, which shows every request it was sent."""

from typing import Any

import httpx

from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_documents import finished, search
from tests.providers.standins import API_KEY, StandIn

QUESTION = "When do the ferries leave the harbour?"


async def base_embedded_remotely(client: httpx.AsyncClient, user: User, standin: StandIn) -> str:
    configured = await client.put(
        "/api/v1/providers/openai-compatible",
        headers=user.headers,
        json={"api_key": API_KEY, "base_url": standin.url + "/v1"},
    )
    assert configured.status_code == 200, configured.text
    created = await client.post(
        "/api/v1/knowledge/bases",
        headers=user.headers,
        json={"name": "Harbour", "embedding_model": "openai-compatible/embedder-standin"},
    )
    assert created.status_code == 201, created.text
    base_id = str(created.json()["id"])
    accepted = await client.post(
        f"/api/v1/knowledge/bases/{base_id}/documents/text",
        headers=user.headers,
        json={"name": "schedule", "content": "Ferries leave the harbour at 6:15 and at 18:40."},
    )
    assert (await finished(client, user, accepted.json()["job"]["id"]))["status"] == "done"
    return base_id


def times_embedded(standin: StandIn, text: str) -> int:
    def inputs(body: Any) -> list[str]:
        given = body.get("input")
        return [given] if isinstance(given, str) else list(given or [])

    return sum(
        1 for request in standin.received if request.path == "/v1/embeddings" and text in inputs(request.body)
    )


async def test_a_question_asked_again_is_embedded_once_per_account(client, standin: StandIn) -> None:
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    alices, bobs = (
        await base_embedded_remotely(client, alice, standin),
        await base_embedded_remotely(client, bob, standin),
    )

    first = await search(client, alice, alices, QUESTION, mode="vector")
    again = await search(client, alice, alices, QUESTION, mode="vector")
    assert times_embedded(standin, QUESTION) == 1
    assert again == first and first[0]["content"].startswith("Ferries leave")

    # Another account asking the same thing gets its own embedding, not alice's vector.
    await search(client, bob, bobs, QUESTION, mode="vector")
    assert times_embedded(standin, QUESTION) == 2
    # A different question is embedded, of course.
    await search(client, alice, alices, QUESTION + " On Sundays?", mode="vector")
    assert times_embedded(standin, QUESTION + " On Sundays?") == 1


async def test_with_the_cache_off_every_question_is_embedded(make_client, standin: StandIn) -> None:
    client = await make_client(query_cache_seconds=0)
    alice = await sign_up(client, "alice")
    base_id = await base_embedded_remotely(client, alice, standin)

    await search(client, alice, base_id, QUESTION, mode="vector")
    await search(client, alice, base_id, QUESTION, mode="vector")

    assert times_embedded(standin, QUESTION) == 2
