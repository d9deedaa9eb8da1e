"""Setting a bot up for the web widget, and reading the widget's event streams, the way a
user and the widget itself do it over HTTP (docs/web-channel.md)."""

import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.faces.chatagent.conftest import User

# Short, deterministic answers keep the suite fast on two cores.
STEADY = {"temperature": 0.0, "max_tokens": 24}


@dataclass
class WebBot:
    id: str
    key: str  # the public widget key
    embed: str

    def path(self, rest: str) -> str:
        return f"/api/v1/widget/{self.id}/{rest}"


async def web_bot(
    client: httpx.AsyncClient,
    owner: User,
    origins: list[str],
    name: str = "Web helper",
    **bot: Any,
) -> WebBot:
    body = {"name": name, "llm_config": {**STEADY, **bot.pop("llm_config", {})}, **bot}
    created = await client.post("/api/v1/bots/", headers=owner.headers, json=body)
    assert created.status_code == 201, created.text
    bot_id = created.json()["id"]
    settings = await client.put(
        f"/api/v1/bots/{bot_id}/widget", headers=owner.headers, json={"allowed_origins": origins}
    )
    assert settings.status_code == 200, settings.text
    key = await client.post(
        f"/api/v1/bots/{bot_id}/widget/keys", headers=owner.headers, json={"name": "site"}
    )
    assert key.status_code == 201, key.text
    return WebBot(bot_id, key.json()["key"], key.json()["embed"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_visitor(client: httpx.AsyncClient, bot: WebBot) -> dict[str, str]:
    """A visitor's headers (its token), as the widget keeps them."""
    made = await client.post(bot.path("visitors"), headers=bearer(bot.key))
    assert made.status_code == 201, made.text
    return bearer(made.json()["visitor_token"])


def read_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a text/event-stream body; comment lines are skipped."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


async def say(
    client: httpx.AsyncClient, bot: WebBot, visitor: dict[str, str], content: str
) -> list[tuple[str, Any]]:
    response = await client.post(bot.path("messages"), headers=visitor, json={"content": content})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return read_events(response.text)
