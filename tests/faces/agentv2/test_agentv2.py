"""The Agent v2 face, example by example from agent-v2-api.txt: agents, datastores and their
sources, chat (JSON and server-sent events), conversations with contacts and handoffs."""

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.faces.chatagent.conftest import sign_up


class Caller:
    def __init__(self, key: str) -> None:
        self.headers = {"Authorization": f"Bearer {key}"}


async def caller(client: httpx.AsyncClient, name: str) -> Caller:
    user = await sign_up(client, name)
    key = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "agents"})
    assert key.status_code == 201, key.text
    return Caller(key.json()["key"])


@pytest.fixture
async def ana(client: httpx.AsyncClient) -> Caller:
    return await caller(client, "ana")


@pytest.fixture
async def beto(client: httpx.AsyncClient) -> Caller:
    return await caller(client, "beto")


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"]


async def datastore_with(client: httpx.AsyncClient, who: Caller, name: str, content: str) -> str:
    created = await client.post("/api/v2/datastores", headers=who.headers, json={"name": "FAQ General"})
    assert created.status_code == 201, created.text
    datastore_id = created.json()["id"]
    added = await client.post(
        f"/api/v2/datastores/{datastore_id}/sources/text",
        headers=who.headers,
        json={"content": content, "name": name},
    )
    assert added.status_code == 202, added.text
    assert added.json()["status"] in ("queued", "processing", "ready")
    for _ in range(200):
        sources = (await client.get(f"/api/v2/datastores/{datastore_id}/sources", headers=who.headers)).json()
        if all(item["status"] in ("ready", "failed") for item in sources["data"]):
            break
        await asyncio.sleep(0.1)
    assert [item["status"] for item in sources["data"]] == ["ready"]
    return str(datastore_id)


async def agent(client: httpx.AsyncClient, who: Caller, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v2/agents", headers=who.headers, json={"name": "Agente de Soporte", "temperature": 0, **body}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_documents_agents_are_created_listed_read_and_updated(
    client: httpx.AsyncClient, ana: Caller
) -> None:
    created = await agent(
        client,
        ana,
        name="Agente de Soporte",
        systemPrompt="Sos un agente de soporte...",
        modelName="gpt-4o",
        tools=["datastore", "request-human"],
    )
    assert created["modelName"] == "gpt-4o" and created["tools"] == ["datastore", "request-human"]
    assert created["status"] == "active" and created["systemPrompt"] == "Sos un agente de soporte..."
    fetched = (await client.get(f"/api/v2/agents/{created['id']}", headers=ana.headers)).json()
    assert {key: fetched[key] for key in ("id", "name", "description", "modelName", "tools", "status")} == {
        "id": created["id"],
        "name": "Agente de Soporte",
        "description": "",
        "modelName": "gpt-4o",
        "tools": ["datastore", "request-human"],
        "status": "active",
    }
    listed = (await client.get("/api/v2/agents", headers=ana.headers)).json()["data"]
    assert [item["id"] for item in listed] == [created["id"]]

    datastore_id = await datastore_with(client, ana, "Horarios", "Nuestros horarios son de 9 a 18 hs.")
    updated = await client.put(
        f"/api/v2/agents/{created['id']}",
        headers=ana.headers,
        json={
            "name": "Agente de Ventas",
            "description": "Responde consultas de productos",
            "tools": [{"type": "datastore", "datastoreId": datastore_id}, "lead-capture"],
            "status": "inactive",
        },
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["name"] == "Agente de Ventas" and body["status"] == "inactive"
    assert body["tools"] == [{"type": "datastore", "datastoreId": datastore_id}, "lead-capture"]
    unknown = await client.post(
        "/api/v2/agents", headers=ana.headers, json={"name": "x", "modelName": "skynet-9"}
    )
    assert_error(unknown, 400, "INVALID_PARAMETERS")


async def test_datastores_take_sources_and_answer_queries(client: httpx.AsyncClient, ana: Caller) -> None:
    datastore_id = await datastore_with(
        client, ana, "FAQ General", "Nuestros horarios son de 9 a 18 hs, de lunes a viernes."
    )
    file = await client.post(
        f"/api/v2/datastores/{datastore_id}/sources/file",
        headers=ana.headers,
        files={"file": ("envios.txt", "Los envíos tardan 48 horas.".encode(), "text/plain")},
    )
    assert file.status_code == 202 and file.json()["name"] == "envios.txt"
    local = await client.post(
        f"/api/v2/datastores/{datastore_id}/sources/url",
        headers=ana.headers,
        json={"url": "http://127.0.0.1/faq"},
    )
    assert_error(local, 400, "INVALID_PARAMETERS")
    for _ in range(200):
        sources = (
            await client.get(f"/api/v2/datastores/{datastore_id}/sources", headers=ana.headers)
        ).json()["data"]
        if all(item["status"] == "ready" for item in sources):
            break
        await asyncio.sleep(0.1)
    assert sorted(item["name"] for item in sources) == ["FAQ General", "envios.txt"]

    found = await client.post(
        f"/api/v2/datastores/{datastore_id}/query",
        headers=ana.headers,
        json={"query": "¿Cuáles son los horarios?", "topK": 5},
    )
    assert found.status_code == 200
    [best, *_] = found.json()["results"]
    assert (
        best["source"] == {"name": "FAQ General"} and "9 a 18" in best["content"] and 0 < best["score"] <= 1
    )
    listed = (await client.get("/api/v2/datastores", headers=ana.headers)).json()["data"]
    assert [item["id"] for item in listed] == [datastore_id]
    assert (await client.delete(f"/api/v2/datastores/{datastore_id}", headers=ana.headers)).status_code == 200
    assert_error(
        await client.get(f"/api/v2/datastores/{datastore_id}", headers=ana.headers), 404, "NOT_FOUND"
    )


def events_of(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_chat_answers_from_the_datastore_in_json_and_in_events(
    client: httpx.AsyncClient, ana: Caller
) -> None:
    datastore_id = await datastore_with(client, ana, "FAQ", "Nuestros horarios son de 9 a 18 hs.")
    bot = await agent(client, ana, tools=[{"type": "datastore", "datastoreId": datastore_id}])
    reply = await client.post(
        f"/api/v2/agent/{bot['id']}/chat",
        headers=ana.headers,
        json={"query": "¿Cuáles son los horarios?", "visitorId": "user_456", "streaming": False},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"answer", "conversationId", "messageId", "sources"}
    assert "9" in body["answer"] and body["sources"][0]["source"] == "FAQ"

    streamed = await client.post(
        f"/api/v2/agent/{bot['id']}/chat",
        headers={**ana.headers, "Accept": "text/event-stream"},
        json={"query": "¿Y a qué hora cierran?", "conversationId": body["conversationId"]},
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    events = events_of(streamed.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "source" and "token" in kinds and kinds[-1] == "done"
    done = events[-1][1]
    assert done["answer"] == "".join(data["token"] for kind, data in events if kind == "token")
    assert done["conversationId"] == body["conversationId"]
    streamed_sources = [data for kind, data in events if kind == "source"]
    assert done["sources"] == streamed_sources

    messages = (
        await client.get(f"/api/v2/conversations/{body['conversationId']}/messages", headers=ana.headers)
    ).json()["data"]
    assert [message["role"] for message in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[-1]["id"] == done["messageId"] and messages[-1]["sources"] == done["sources"]
    assert messages[1]["sources"] == body["sources"]


async def test_lead_capture_and_a_request_for_a_person_show_in_the_conversation_list(
    client: httpx.AsyncClient, ana: Caller
) -> None:
    bot = await agent(client, ana, tools=["lead-capture", "request-human"])
    first = await client.post(
        f"/api/v2/agent/{bot['id']}/chat",
        headers=ana.headers,
        json={
            "query": "Hola",
            "contact": {"email": "cliente@ejemplo.com", "firstName": "Juan", "phoneNumber": "+5491123456789"},
        },
    )
    assert first.status_code == 200, first.text
    conversation_id = first.json()["conversationId"]
    more = await client.post(
        f"/api/v2/agent/{bot['id']}/chat",
        headers=ana.headers,
        json={
            "query": "Quiero hablar con una persona, mi otro correo es juan.b@ejemplo.com",
            "conversationId": conversation_id,
        },
    )
    assert more.status_code == 200
    assert "person" in more.json()["answer"]

    [listed] = (
        await client.get("/api/v2/conversations", headers=ana.headers, params={"status": "unresolved"})
    ).json()["data"]
    assert listed["id"] == conversation_id and listed["agentId"] == bot["id"]
    assert listed["humanRequested"] is True and listed["messagesCount"] == 4
    # The contact the client sent, updated field by field by what the visitor wrote later.
    assert listed["contact"] == {
        "email": "juan.b@ejemplo.com",
        "firstName": "Juan",
        "phoneNumber": "+5491123456789",
    }
    # The lead is one of the account's contacts too, as ChatBotKit's face lists them.
    [lead] = (await client.get("/v1/contact/list", headers=ana.headers)).json()["items"]
    assert (lead["email"], lead["phone"], lead["name"]) == ("juan.b@ejemplo.com", "+5491123456789", "Juan")
    linked = (await client.get(f"/v1/conversation/{conversation_id}/fetch", headers=ana.headers)).json()
    assert linked["contactId"] == lead["id"]
    assert (await client.get("/api/v2/conversations", headers=ana.headers, params={"status": "open"})).json()[
        "data"
    ] == []

    resolved = await client.put(
        f"/api/v2/conversations/{conversation_id}/status", headers=ana.headers, json={"status": "resolved"}
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    page = (
        await client.get(
            "/api/v2/conversations", headers=ana.headers, params={"agentId": bot["id"], "limit": 1}
        )
    ).json()
    assert page["total"] == 1 and page["hasMore"] is False and page["data"][0]["status"] == "resolved"
    one = (await client.get(f"/api/v2/conversations/{conversation_id}", headers=ana.headers)).json()
    assert one["status"] == "resolved" and one["messagesCount"] == 4

    # Without lead capture, an address in a message is not kept.
    quiet = await agent(client, ana, name="Sin captura")
    reply = await client.post(
        f"/api/v2/agent/{quiet['id']}/chat", headers=ana.headers, json={"query": "Soy pepe@ejemplo.com"}
    )
    other = (
        await client.get(f"/api/v2/conversations/{reply.json()['conversationId']}", headers=ana.headers)
    ).json()
    assert other["contact"] == {} and other["humanRequested"] is False


async def test_errors_and_isolation(client: httpx.AsyncClient, ana: Caller, beto: Caller) -> None:
    bot = await agent(client, ana)
    assert_error(await client.get("/api/v2/agents"), 401, "UNAUTHORIZED")
    assert_error(
        await client.get("/api/v2/agents", headers={"Authorization": "Bearer tk_nope"}), 401, "UNAUTHORIZED"
    )
    assert_error(await client.get(f"/api/v2/agents/{bot['id']}", headers=beto.headers), 404, "NOT_FOUND")
    assert_error(
        await client.post(f"/api/v2/agent/{bot['id']}/chat", headers=beto.headers, json={"query": "hola"}),
        404,
        "NOT_FOUND",
    )
    assert (await client.get("/api/v2/conversations", headers=beto.headers)).json()["data"] == []
    assert_error(
        await client.post(f"/api/v2/agent/{bot['id']}/chat", headers=ana.headers, json={}),
        400,
        "INVALID_PARAMETERS",
    )
    assert_error(
        await client.post(
            f"/api/v2/agent/{bot['id']}/chat",
            headers=ana.headers,
            json={"query": "hola", "contact": {"email": "no"}},
        ),
        400,
        "INVALID_PARAMETERS",
    )
    assert_error(
        await client.put(
            "/api/v2/conversations/conv_nope/status", headers=ana.headers, json={"status": "closed"}
        ),
        400,
        "INVALID_PARAMETERS",
    )
    other_agent = await agent(client, ana, name="Otro")
    started = await client.post(
        f"/api/v2/agent/{other_agent['id']}/chat", headers=ana.headers, json={"query": "hola"}
    )
    assert_error(
        await client.post(
            f"/api/v2/agent/{bot['id']}/chat",
            headers=ana.headers,
            json={"query": "hola", "conversationId": started.json()["conversationId"]},
        ),
        404,
        "NOT_FOUND",
    )
