"""The scale-out deployment for real: two `tertulia serve` processes and two Celery workers
behind nginx (deploy/nginx.conf), on PostgreSQL and Redis. Hundreds of streamed replies
through every streaming face, one rate limit across the processes, a process killed
mid-reply and PostgreSQL restarted under a running server."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import text

from tertulia.store.session import Database
from tests.faces.agentv2.test_agentv2 import events_of
from tests.faces.chatagent.conftest import User, sign_up
from tests.providers.standins import StandIn
from tests.scale.topology import Topology

pytestmark = pytest.mark.scale

# Far above any healthy reply here, far below a hang: what "did not hang" means.
PROMPTLY = 30.0
PLENTY = {"standard": "100000/minute", "premium": "100000/minute", "enterprise": "100000/minute"}


async def api_key(client: httpx.AsyncClient, user: User) -> str:
    created = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "load"})
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


async def remote_bot(client: httpx.AsyncClient, user: User) -> str:
    """A bot whose model, "gpt-4o", answers through the OpenAI stand-in."""
    created = await client.post(
        "/api/v1/bots/",
        headers=user.headers,
        json={"name": "Remote", "llm_config": {"provider": "openai", "model": "gpt-4o"}},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


class Caller:
    """One account talking to one bot through nginx, in each face's own dialect."""

    def __init__(self, client: httpx.AsyncClient, topology: Topology, user: User, key: str, bot_id: str):
        self.client, self.topology, self.user, self.key, self.bot_id = client, topology, user, key, bot_id

    async def chatagent_websocket(self, question: str) -> str:
        created = await self.client.post(
            "/api/v1/conversations/", headers=self.user.headers, json={"bot_id": self.bot_id}
        )
        assert created.status_code in (200, 201), created.text
        url = self.topology.url.replace("http://", "ws://")
        url += f"/api/v1/ws/conversations/{created.json()['id']}?token={self.user.token}"
        async with websockets.connect(url, open_timeout=PROMPTLY) as socket:
            await socket.send(json.dumps({"type": "user_message", "content": question}))
            chunks = []
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=PROMPTLY))
                if frame["type"] == "stream_chunk":
                    chunks.append(frame["content"])
                elif frame["type"] == "stream_complete":
                    assert "".join(chunks) == frame["full_content"]
                    return str(frame["full_content"])
                elif frame["type"] != "heartbeat":
                    raise AssertionError(f"unexpected frame {frame}")

    async def agentv2_sse(self, question: str) -> str:
        streamed = await self.client.post(
            f"/api/v2/agent/{self.bot_id}/chat",
            headers={"Authorization": f"Bearer {self.key}", "Accept": "text/event-stream"},
            json={"query": question, "streaming": True},
        )
        assert streamed.status_code == 200, streamed.text
        events = events_of(streamed.text)
        assert events[-1][0] == "done", events
        assert events[-1][1]["answer"] == "".join(data["token"] for kind, data in events if kind == "token")
        return str(events[-1][1]["answer"])

    async def chatbotkit_jsonl(self, question: str) -> str:
        headers = {"Authorization": f"Token {self.key}"}
        created = await self.client.post(
            "/v1/conversation/create", headers=headers, json={"botId": self.bot_id}
        )
        assert created.status_code == 200, created.text
        streamed = await self.client.post(
            f"/v1/conversation/{created.json()['id']}/complete",
            headers={**headers, "Accept": "application/jsonl"},
            json={"text": question},
        )
        assert streamed.status_code == 200, streamed.text
        lines = [json.loads(line) for line in streamed.text.splitlines() if line]
        assert lines[-1]["type"] == "result", lines
        return "".join(line["data"]["token"] for line in lines if line["type"] == "token")

    async def openai_sse(self, question: str) -> str:
        streamed = await self.client.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.key}"},
            json={"model": self.bot_id, "messages": [{"role": "user", "content": question}], "stream": True},
        )
        assert streamed.status_code == 200, streamed.text
        data = [line[len("data: ") :] for line in streamed.text.splitlines() if line.startswith("data: ")]
        assert data[-1] == "[DONE]", data
        chunks = [json.loads(item) for item in data[:-1]]
        return "".join(
            chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"]
        )


async def caller_through(topology: Topology, client: httpx.AsyncClient, name: str) -> Caller:
    user = await sign_up(client, name)
    return Caller(client, topology, user, await api_key(client, user), await remote_bot(client, user))


async def count(database: Database, query: str, **parameters: Any) -> int:
    async with database.session() as session:
        return int((await session.execute(text(query), parameters)).scalar_one())


async def test_concurrent_streams_through_every_face_finish_and_are_stored_once(
    start_topology: Callable[..., Topology], database: Database
) -> None:
    topology = start_topology(rate_limit_plans=json.dumps(PLENTY))
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(base_url=topology.url, timeout=PROMPTLY, limits=limits) as client:
        caller = await caller_through(topology, client, "loud")
        faces = [caller.chatagent_websocket, caller.agentv2_sse, caller.chatbotkit_jsonl, caller.openai_sse]
        questions = [f"question {index}" for index in range(200)]
        answers = await asyncio.gather(
            *(faces[index % len(faces)](question) for index, question in enumerate(questions)),
            return_exceptions=True,
        )

    failures = [answer for answer in answers if isinstance(answer, BaseException)]
    assert failures == [], f"{len(failures)} of 200 failed, first: {failures[:1]!r}"
    assert answers == ["Hello, world!"] * 200
    # The three faces that keep conversations stored each question once, and one reply to it.
    kept = [question for index, question in enumerate(questions) if index % len(faces) != 3]
    stored = await count(
        database, "SELECT count(*) FROM messages WHERE role = 'user' AND content LIKE 'question %'"
    )
    distinct = await count(
        database,
        "SELECT count(DISTINCT content) FROM messages WHERE role = 'user' AND content LIKE 'question %'",
    )
    assert (stored, distinct) == (len(kept), len(kept))
    assert await count(database, "SELECT count(*) FROM messages WHERE role = 'assistant'") == len(kept)
    assert await count(database, "SELECT count(*) FROM conversations") == len(kept)
    # Every reply, the OpenAI face's too, is one model call on the account's usage.
    assert await count(database, "SELECT count(*) FROM usage_records WHERE task_type = 'chat'") == 200
    used = {address for address in topology.nginx.upstreams_used() if address != "-"}
    assert used == {f"127.0.0.1:{api.port}" for api in topology.apis}, "nginx spread the load"


async def test_one_rate_limit_holds_across_the_processes_behind_nginx(
    start_topology: Callable[..., Topology],
) -> None:
    plans = {"standard": "6/minute", "premium": "1000/minute", "enterprise": "10000/minute"}
    topology = start_topology(
        worker_processes=0, rate_limit_plans=json.dumps(plans), anonymous_rate_limit="3/minute"
    )
    async with httpx.AsyncClient(base_url=topology.url, timeout=PROMPTLY) as client:
        user = await sign_up(client, "counted")  # the address's first anonymous request
        replies = [await client.get("/api/v1/auth/me", headers=user.headers) for _ in range(8)]
        # Each client sets an X-Forwarded-For of its choosing; nginx puts the address it saw
        # in its place, so all these attempts come from one address and share its limit.
        logins = [
            await client.post(
                "/api/v1/auth/login",
                headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
                json={"username": "counted", "password": "wrong guess"},
            )
            for attempt in range(3)
        ]

    assert [reply.status_code for reply in replies] == [200] * 6 + [429] * 2
    assert [reply.headers["X-RateLimit-Remaining"] for reply in replies[:6]] == ["5", "4", "3", "2", "1", "0"]
    assert replies[-1].json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert [login.status_code for login in logins] == [401, 401, 429]
    counted = topology.nginx.upstreams_used()[-11:-3]
    assert set(counted) == {f"127.0.0.1:{api.port}" for api in topology.apis}, "both processes counted"


async def test_a_process_killed_mid_reply_leaves_the_other_serving(
    start_topology: Callable[..., Topology], standin: StandIn
) -> None:
    topology = start_topology(worker_processes=0, rate_limit_plans=json.dumps(PLENTY))
    async with httpx.AsyncClient(base_url=topology.url, timeout=PROMPTLY) as client:
        caller = await caller_through(topology, client, "steady")
        standin.reset(mode="stall", stall=3.0)  # every reply starts, then thinks for 3 s
        in_flight = [asyncio.create_task(caller.agentv2_sse(f"in flight {index}")) for index in range(6)]
        await asyncio.sleep(1.5)
        topology.apis[0].kill()
        finished = await asyncio.wait_for(asyncio.gather(*in_flight, return_exceptions=True), PROMPTLY)
        # The replies the killed process held broke off; the other process's finished.
        assert any(isinstance(outcome, BaseException) for outcome in finished), finished
        assert any(outcome == "Hello, world!" for outcome in finished), finished

        standin.reset()
        after = [await client.get("/api/v1/auth/me", headers=caller.user.headers) for _ in range(10)]
        answers = await asyncio.gather(*(caller.agentv2_sse(f"after {index}") for index in range(4)))

    assert [reply.status_code for reply in after] == [200] * 10
    assert answers == ["Hello, world!"] * 4
