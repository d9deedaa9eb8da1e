"""The Agent v2 face past its examples: streaming asked for in the body, deleting agents, URL
sources, pages on every list, each error status of the document's table (400, 401, 403, 404,
429, 500) in its envelope, and no route that reaches another account's data."""

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.broken import call_broken_route
from tests.conftest import AppFactory
from tests.core.knowledge.test_fetching import serving
from tests.faces.agentv2.test_agentv2 import (
    Caller,
    agent,
    assert_error,
    caller,
    datastore_with,
    events_of,
)
from tests.faces.chatagent.conftest import sign_up


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """A real web server on this machine, with a page at /page.html."""
    with serving() as address:
        yield address


async def settled_sources(client: httpx.AsyncClient, who: Caller, datastore_id: str) -> list[dict[str, Any]]:
    """The datastore's sources once none is queued or processing any more."""
    for _ in range(300):
        listed = await client.get(f"/api/v2/datastores/{datastore_id}/sources", headers=who.headers)
        sources = list(listed.json()["data"])
        if all(item["status"] in ("ready", "failed") for item in sources):
            return sources
        await asyncio.sleep(0.1)
    raise AssertionError(f"the sources did not settle: {sources}")


async def test_streaming_in_the_body_alone_streams_events(client: httpx.AsyncClient) -> None:
    ana = await caller(client, "ana")
    bot = await agent(client, ana)
    streamed = await client.post(
        f"/api/v2/agent/{bot['id']}/chat",
        headers=ana.headers,
        json={"query": "Contame sobre tus productos", "streaming": True},
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    events = events_of(streamed.text)
    assert [kind for kind, _ in events][-1] == "done" and any(kind == "token" for kind, _ in events)
    done = events[-1][1]
    assert done["answer"] == "".join(data["token"] for kind, data in events if kind == "token")
    assert set(done) >= {"answer", "conversationId", "messageId", "sources"}


async def test_a_deleted_agent_is_gone_with_its_conversations(client: httpx.AsyncClient) -> None:
    ana = await caller(client, "ana")
    bot = await agent(client, ana)
    chatted = await client.post(
        f"/api/v2/agent/{bot['id']}/chat", headers=ana.headers, json={"query": "hola"}
    )
    conversation_id = chatted.json()["conversationId"]
    deleted = await client.delete(f"/api/v2/agents/{bot['id']}", headers=ana.headers)
    assert deleted.status_code == 200 and deleted.json() == {"id": bot["id"], "deleted": True}
    assert_error(await client.get(f"/api/v2/agents/{bot['id']}", headers=ana.headers), 404, "NOT_FOUND")
    assert_error(
        await client.get(f"/api/v2/conversations/{conversation_id}", headers=ana.headers), 404, "NOT_FOUND"
    )
    assert (await client.get("/api/v2/agents", headers=ana.headers)).json()["data"] == []
    assert_error(await client.delete(f"/api/v2/agents/{bot['id']}", headers=ana.headers), 404, "NOT_FOUND")


async def test_a_url_source_is_fetched_and_answers_queries(make_client: AppFactory, site: str) -> None:
    client = await make_client(allow_private_urls=True)  # the test's site is on this machine
    ana = await caller(client, "ana")
    datastore_id = (
        await client.post("/api/v2/datastores", headers=ana.headers, json={"name": "Web"})
    ).json()["id"]
    added = await client.post(
        f"/api/v2/datastores/{datastore_id}/sources/url",
        headers=ana.headers,
        json={"url": f"http://{site}/page.html"},
    )
    assert added.status_code == 202, added.text
    assert added.json()["status"] in ("queued", "processing", "ready")
    [source] = await settled_sources(client, ana, datastore_id)
    assert source["status"] == "ready" and source["type"] == "url", source
    found = await client.post(
        f"/api/v2/datastores/{datastore_id}/query", headers=ana.headers, json={"query": "a fetched page"}
    )
    assert "A fetched page." in found.json()["results"][0]["content"]
    missing = await client.post(
        f"/api/v2/datastores/{datastore_id}/sources/url",
        headers=ana.headers,
        json={"url": "ftp://example.com/faq"},
    )
    assert_error(missing, 400, "INVALID_PARAMETERS")


async def test_every_list_pages(client: httpx.AsyncClient) -> None:
    ana = await caller(client, "ana")
    made = [(await agent(client, ana, name=f"Agente {number}"))["id"] for number in range(3)]
    first = (await client.get("/api/v2/agents", headers=ana.headers, params={"limit": 2})).json()
    second = (
        await client.get("/api/v2/agents", headers=ana.headers, params={"limit": 2, "offset": 2})
    ).json()
    assert (first["total"], first["hasMore"], second["hasMore"]) == (3, True, False)
    assert sorted(item["id"] for item in first["data"] + second["data"]) == sorted(made)

    for number in range(22):
        await client.post(
            f"/api/v2/agent/{made[0]}/chat", headers=ana.headers, json={"query": f"hola {number}"}
        )
    page = (await client.get("/api/v2/conversations", headers=ana.headers)).json()
    assert len(page["data"]) == 20 and page["limit"] == 20 and page["total"] == 22 and page["hasMore"]
    rest = (await client.get("/api/v2/conversations", headers=ana.headers, params={"offset": 20})).json()
    assert len(rest["data"]) == 2 and not rest["hasMore"]
    assert {item["id"] for item in page["data"]}.isdisjoint(item["id"] for item in rest["data"])

    conversation_id = rest["data"][0]["id"]
    messages = (
        await client.get(
            f"/api/v2/conversations/{conversation_id}/messages", headers=ana.headers, params={"limit": 1}
        )
    ).json()
    assert (len(messages["data"]), messages["total"], messages["hasMore"]) == (1, 2, True)
    datastores = (await client.get("/api/v2/datastores", headers=ana.headers, params={"limit": 1})).json()
    assert datastores == {"data": [], "total": 0, "limit": 1, "offset": 0, "hasMore": False}
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
        assert_error(
            await client.get("/api/v2/agents", headers=ana.headers, params=bad), 400, "INVALID_PARAMETERS"
        )


async def test_a_key_without_the_scope_is_forbidden(client: httpx.AsyncClient) -> None:
    user = await sign_up(client, "ana")
    key = await client.post(
        "/api/v1/auth/api-keys", headers=user.headers, json={"name": "reader", "scopes": ["bots:read"]}
    )
    reader = Caller(key.json()["key"])
    assert (await client.get("/api/v2/agents", headers=reader.headers)).status_code == 200
    assert_error(
        await client.post("/api/v2/agents", headers=reader.headers, json={"name": "x"}), 403, "FORBIDDEN"
    )
    assert_error(await client.get("/api/v2/datastores", headers=reader.headers), 403, "FORBIDDEN")
    assert (await client.get("/api/v2/agents", headers=reader.headers)).json()["data"] == []


async def test_too_many_requests_is_a_429_in_the_envelope(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    ana = await caller(client, "ana")
    limited = await make_client(rate_limit_plans={"standard": "2/minute"})
    for _ in range(2):
        assert (await limited.get("/api/v2/agents", headers=ana.headers)).status_code == 200
    refused = await limited.get("/api/v2/agents", headers=ana.headers)
    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert int(refused.headers["Retry-After"]) >= 1


async def test_an_unexpected_failure_is_a_500_that_reveals_nothing(client: httpx.AsyncClient) -> None:
    response = await call_broken_route(client, "/api/v2/broken-for-this-test")
    assert_error(response, 500, "INTERNAL_ERROR")


async def test_no_route_reaches_another_accounts_data(client: httpx.AsyncClient) -> None:
    ana, beto = await caller(client, "ana"), await caller(client, "beto")
    datastore_id = await datastore_with(client, ana, "FAQ", "Nuestros horarios son de 9 a 18 hs.")
    bot = await agent(client, ana, tools=[{"type": "datastore", "datastoreId": datastore_id}, "lead-capture"])
    chatted = await client.post(
        f"/api/v2/agent/{bot['id']}/chat",
        headers=ana.headers,
        json={"query": "hola", "contact": {"email": "juan@ejemplo.com"}},
    )
    conversation_id = chatted.json()["conversationId"]
    [source] = (await client.get(f"/api/v2/datastores/{datastore_id}/sources", headers=ana.headers)).json()[
        "data"
    ]

    attempts = [
        ("GET", f"/api/v2/agents/{bot['id']}", None),
        ("PUT", f"/api/v2/agents/{bot['id']}", {"name": "Mío"}),
        ("DELETE", f"/api/v2/agents/{bot['id']}", None),
        ("POST", f"/api/v2/agent/{bot['id']}/chat", {"query": "hola"}),
        ("GET", f"/api/v2/conversations/{conversation_id}", None),
        ("GET", f"/api/v2/conversations/{conversation_id}/messages", None),
        ("PUT", f"/api/v2/conversations/{conversation_id}/status", {"status": "resolved"}),
        ("GET", f"/api/v2/datastores/{datastore_id}", None),
        ("DELETE", f"/api/v2/datastores/{datastore_id}", None),
        ("POST", f"/api/v2/datastores/{datastore_id}/query", {"query": "horarios"}),
        ("GET", f"/api/v2/datastores/{datastore_id}/sources", None),
        ("POST", f"/api/v2/datastores/{datastore_id}/sources/text", {"content": "x", "name": "x"}),
        ("POST", f"/api/v2/datastores/{datastore_id}/sources/url", {"url": "https://example.com/"}),
    ]
    nobodys = {bot["id"]: "agent_nope", conversation_id: "conv_nope", datastore_id: "ds_nope"}
    for method, path, body in attempts:
        response = await client.request(method, path, headers=beto.headers, json=body)
        assert_error(response, 404, "NOT_FOUND")
        # The same as for an id that does not exist: nothing tells beto that ana's is there.
        for real, made_up in nobodys.items():
            path = path.replace(real, made_up)
        unknown = await client.request(method, path, headers=beto.headers, json=body)
        assert response.json() == unknown.json()
    file = await client.post(
        f"/api/v2/datastores/{datastore_id}/sources/file",
        headers=beto.headers,
        files={"file": ("x.txt", b"x", "text/plain")},
    )
    assert_error(file, 404, "NOT_FOUND")
    # Beto's agent cannot be given ana's datastore as its tool.
    refused = await client.post(
        "/api/v2/agents",
        headers=beto.headers,
        json={"name": "Ladrón", "tools": [{"type": "datastore", "datastoreId": datastore_id}]},
    )
    assert_error(refused, 404, "NOT_FOUND")
    for path in ("/api/v2/agents", "/api/v2/conversations", "/api/v2/datastores"):
        assert (await client.get(path, headers=beto.headers)).json()["data"] == []

    # Ana's data is as it was.
    assert (await client.get(f"/api/v2/agents/{bot['id']}", headers=ana.headers)).json()["name"] == bot[
        "name"
    ]
    conversation = (await client.get(f"/api/v2/conversations/{conversation_id}", headers=ana.headers)).json()
    assert conversation["status"] == "open" and conversation["contact"] == {"email": "juan@ejemplo.com"}
    after = (await client.get(f"/api/v2/datastores/{datastore_id}/sources", headers=ana.headers)).json()[
        "data"
    ]
    assert after == [source]
