"""The web widget's API: a public key that can only chat with its one bot, visitors who reach
their own conversation only, per-bot origins and CORS, a per-visitor rate limit, and operators
who take a conversation over (the bot stays quiet), answer, hand it back and resolve it."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tertulia.settings import Settings
from tests.faces.chatagent.conftest import sign_up
from tests.faces.chatagent.widget_setup import bearer, new_visitor, read_events, say, web_bot
from tests.live_server import serve_in_thread

SITE = "https://shop.example.com"


async def test_settings_are_checked_and_kept(client, alice) -> None:
    bot = await web_bot(client, alice, [SITE])
    url = f"/api/v1/bots/{bot.id}/widget"
    for wrong in (
        {"allowed_origins": ["shop.example.com"]},
        {"allowed_origins": ["https://shop.example.com/path"]},
        {"colors": {"primary": "blue"}},
        {"language": "fr"},
        {"avatar_url": "javascript:alert(1)"},
        {"allowed_origins": [SITE] * 51},
    ):
        refused = await client.put(url, headers=alice.headers, json=wrong)
        assert refused.status_code in (400, 422), (wrong, refused.text)
        assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    changed = await client.put(
        url,
        headers=alice.headers,
        json={
            "allowed_origins": ["HTTPS://Shop.Example.com/", "http://localhost:8080"],
            "greeting": "¡Hola! ¿En qué te ayudo?",
            "language": "es",
            "colors": {"primary": "#0f766e"},
        },
    )
    assert changed.status_code == 200, changed.text
    settings = (await client.get(url, headers=alice.headers)).json()
    assert settings["allowed_origins"] == [SITE, "http://localhost:8080"]
    assert settings["colors"] == {"primary": "#0f766e", "background": "#ffffff", "text": "#111827"}
    assert settings["language"] == "es" and settings["visitor_rate_limit"] == "20/minute;300/hour"
    expected = f'<script src="http://testserver/widget.js" data-bot="{bot.id}" data-key="{bot.key}" async>'
    assert bot.embed == expected + "</script>"

    config = await client.get(bot.path("config"), headers=bearer(bot.key))
    assert config.status_code == 200, config.text
    public = config.json()
    assert public["title"] == "Web helper" and public["greeting"] == "¡Hola! ¿En qué te ayudo?"
    assert public["lead_capture"] is False and public["request_human"] is False
    assert "system_prompt" not in config.text and "llm" not in config.text


async def test_a_visitor_chats_and_finds_the_history_again(client, alice) -> None:
    bot = await web_bot(client, alice, [SITE])
    visitor = await new_visitor(client, bot)
    empty = await client.get(bot.path("conversation"), headers=visitor)
    assert empty.json() == {"conversation": None, "messages": []}

    events = await say(client, bot, visitor, "What is the capital of France? One word.")
    names = [name for name, _data in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("token") >= 1, names
    text = "".join(data["text"] for name, data in events if name == "token")
    done = events[-1][1]
    assert done["message"]["content"] == text and "Paris" in text
    assert done["message"]["role"] == "assistant" and done["user_message"]["role"] == "user"
    assert done["conversation"]["status"] == "active"

    again = (await client.get(bot.path("conversation"), headers=visitor)).json()
    assert again["conversation"]["id"] == events[0][1]["conversation"]["id"]
    assert [(m["role"], m["content"]) for m in again["messages"]] == [
        ("user", "What is the capital of France? One word."),
        ("assistant", text),
    ]
    # The owner sees it among the account's conversations, with the visitor it came from.
    listed = (await client.get("/api/v1/conversations", headers=alice.headers)).json()["conversations"]
    assert listed[0]["id"] == again["conversation"]["id"] and listed[0]["visitor_id"].startswith("vis_")

    fresh = await client.post(bot.path("conversation"), headers=visitor)
    assert fresh.status_code == 201 and fresh.json()["conversation"]["id"] != again["conversation"]["id"]
    assert (await client.get(bot.path("conversation"), headers=visitor)).json()["messages"] == []


async def test_the_public_key_and_its_visitors_reach_nothing_else(client, alice, bob) -> None:
    bot = await web_bot(client, alice, [SITE])
    other_bot = await web_bot(client, alice, [SITE], name="Other")
    bobs_bot = await web_bot(client, bob, [SITE], name="Bob's")
    first, second = await new_visitor(client, bot), await new_visitor(client, bot)
    await say(client, bot, first, "Hello")
    firsts = (await client.get(bot.path("conversation"), headers=first)).json()["conversation"]["id"]

    for credential in (bearer(bot.key), second):
        for method, path, body in (
            ("GET", "/api/v1/conversations", None),
            ("GET", f"/api/v1/conversations/{firsts}", None),
            ("GET", f"/api/v1/conversations/{firsts}/messages", None),
            ("POST", f"/api/v1/conversations/{firsts}/messages", {"content": "hi"}),
            ("GET", f"/api/v1/bots/{bot.id}", None),
            ("PUT", f"/api/v1/bots/{bot.id}", {"name": "Mine now"}),
            ("DELETE", f"/api/v1/bots/{bot.id}", None),
            ("PUT", f"/api/v1/bots/{bot.id}/widget", {"allowed_origins": ["*"]}),
            ("POST", "/api/v1/auth/api-keys", {"name": "escalate"}),
            ("GET", "/api/v1/knowledge/bases", None),
            (
                "POST",
                "/v1/chat/completions",
                {"model": bot.id, "messages": [{"role": "user", "content": "hi"}]},
            ),
            ("GET", f"/api/v2/conversations/{firsts}", None),
        ):
            answer = await client.request(method, path, headers=credential, json=body)
            assert answer.status_code in (401, 403), (method, path, answer.status_code, answer.text)
    # The key makes visitors and reads the settings, and nothing of the widget's visitors' paths.
    assert (await client.get(bot.path("conversation"), headers=bearer(bot.key))).status_code == 403
    assert (
        await client.post(bot.path("messages"), headers=bearer(bot.key), json={"content": "x"})
    ).status_code == 403
    # Another bot's widget paths, of the same account or another, take neither.
    for elsewhere in (other_bot, bobs_bot):
        for path in ("config", "visitors"):
            assert (await client.post(elsewhere.path(path), headers=bearer(bot.key))).status_code in (
                403,
                405,
            )
        said = await client.post(elsewhere.path("messages"), headers=first, json={"content": "hi"})
        assert said.status_code == 403, said.text
    # A second visitor of the same bot starts empty: it cannot see the first one's talk.
    assert (await client.get(bot.path("conversation"), headers=second)).json()["conversation"] is None
    # The bot and its first conversation are untouched.
    owner_view = await client.get(f"/api/v1/conversations/{firsts}/messages", headers=alice.headers)
    assert owner_view.json()["total"] == 2
    assert (await client.get(f"/api/v1/bots/{bot.id}", headers=alice.headers)).json()["name"] == "Web helper"


async def test_only_the_bots_origins_may_use_it(client, alice) -> None:
    bot = await web_bot(client, alice, [SITE])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = await client.options(bot.path("visitors"), headers={"Origin": SITE, **preflight})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = await client.options(
        bot.path("visitors"), headers={"Origin": "https://evil.example", **preflight}
    )
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    # The same for a bot that does not exist: nothing tells the two apart.
    ghost = await client.options("/api/v1/widget/bot_nope/visitors", headers={"Origin": SITE, **preflight})
    assert ghost.status_code == 403

    config = await client.get(bot.path("config"), headers={"Origin": SITE, **bearer(bot.key)})
    assert config.status_code == 200 and config.headers["access-control-allow-origin"] == SITE
    elsewhere = await client.get(
        bot.path("config"), headers={"Origin": "https://evil.example", **bearer(bot.key)}
    )
    assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "FORBIDDEN"
    assert "origin" in elsewhere.json()["error"]["message"]
    assert "access-control-allow-origin" not in elsewhere.headers
    # A bot with no origins yet is used from no page at all.
    bare = await client.post("/api/v1/bots/", headers=alice.headers, json={"name": "Unlisted"})
    unlisted = await client.options(
        f"/api/v1/widget/{bare.json()['id']}/config", headers={"Origin": SITE, **preflight}
    )
    assert unlisted.status_code == 403


async def test_each_visitor_has_a_rate_limit_of_its_own(make_client, alice_on) -> None:
    client = await make_client(widget_visitor_rate_limit="3/minute")
    alice = await alice_on(client)
    bot = await web_bot(client, alice, [SITE])
    first, second = await new_visitor(client, bot), await new_visitor(client, bot)
    for _ in range(3):
        assert (await client.get(bot.path("conversation"), headers=first)).status_code == 200
    limited = await client.get(bot.path("conversation"), headers=first)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert (await client.get(bot.path("conversation"), headers=second)).status_code == 200


@pytest.fixture
def alice_on():
    async def signed_up(client: httpx.AsyncClient):
        return await sign_up(client, "alice")

    return signed_up


async def test_a_revoked_key_signs_its_visitors_out(client, alice) -> None:
    bot = await web_bot(client, alice, [SITE])
    visitor = await new_visitor(client, bot)
    keys = (await client.get(f"/api/v1/bots/{bot.id}/widget/keys", headers=alice.headers)).json()["keys"]
    assert [key["prefix"] for key in keys] == [bot.key[:10]] and "key" not in keys[0]
    revoked = await client.delete(f"/api/v1/bots/{bot.id}/widget/keys/{keys[0]['id']}", headers=alice.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await client.get(bot.path("conversation"), headers=visitor)).status_code == 401
    assert (await client.post(bot.path("visitors"), headers=bearer(bot.key))).status_code == 401


async def test_a_person_takes_over_and_the_bot_stays_quiet(client, alice) -> None:
    bot = await web_bot(client, alice, [SITE])
    visitor = await new_visitor(client, bot)
    await say(client, bot, visitor, "Hello there")
    asked = await client.post(bot.path("handoff"), headers=visitor)
    assert asked.status_code == 200 and asked.json()["conversation"]["human_requested"] is True
    conversation_id = asked.json()["conversation"]["id"]

    waiting = await client.get("/api/v1/conversations?human_requested=true", headers=alice.headers)
    assert [c["id"] for c in waiting.json()["conversations"]] == [conversation_id]
    assert waiting.json()["conversations"][0]["status"] == "unresolved"
    others = await client.get("/api/v1/conversations?human_requested=false", headers=alice.headers)
    assert others.json()["conversations"] == []

    held = await client.post(
        f"/api/v1/conversations/{conversation_id}/takeover", headers=alice.headers, json={"name": "Marta"}
    )
    assert held.status_code == 200 and held.json()["context"]["operator"]["name"] == "Marta"
    events = await say(client, bot, visitor, "Are you a person?")
    assert [name for name, _data in events] == ["start", "held"], events
    assert events[-1][1]["conversation"]["operator"] == "Marta"
    answer = await client.post(
        f"/api/v1/conversations/{conversation_id}/operator-messages",
        headers=alice.headers,
        json={"content": "Yes, I am Marta. How can I help?", "name": "Marta"},
    )
    assert answer.status_code == 201 and answer.json()["sender_type"] == "agent"
    seen = (await client.get(bot.path("conversation"), headers=visitor)).json()
    assert [(m["role"], m["content"]) for m in seen["messages"][-2:]] == [
        ("user", "Are you a person?"),
        ("operator", "Yes, I am Marta. How can I help?"),
    ]
    assert seen["messages"][-1]["sender_name"] == "Marta" and seen["conversation"]["operator"] == "Marta"
    # The other faces keep quiet as well, saying so in their own envelope.
    quiet = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages", headers=alice.headers, json={"content": "Bot?"}
    )
    assert quiet.status_code == 409 and "Marta" in quiet.json()["error"]["message"]

    back = await client.post(f"/api/v1/conversations/{conversation_id}/handback", headers=alice.headers)
    assert back.status_code == 200 and back.json()["status"] == "active"
    assert "operator" not in back.json()["context"]
    assert [name for name, _ in await say(client, bot, visitor, "Thanks, bye")][-1] == "done"

    resolved = await client.put(
        f"/api/v1/conversations/{conversation_id}/status", headers=alice.headers, json={"status": "resolved"}
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    # A visitor cannot do any of this to its own conversation.
    for path in ("takeover", "handback"):
        assert (
            await client.post(f"/api/v1/conversations/{conversation_id}/{path}", headers=visitor)
        ).status_code == 403


async def test_the_lead_form_becomes_the_accounts_contact(client, alice) -> None:
    bot = await web_bot(client, alice, [SITE])
    visitor = await new_visitor(client, bot)
    nothing = await client.post(bot.path("contact"), headers=visitor, json={"name": "Ana"})
    assert nothing.status_code == 400 and nothing.json()["error"]["code"] == "VALIDATION_ERROR"
    bad = await client.post(bot.path("contact"), headers=visitor, json={"email": "not an address"})
    assert bad.status_code == 400
    left = await client.post(
        bot.path("contact"), headers=visitor, json={"name": "Ana Pérez", "email": "ana@example.com"}
    )
    assert left.status_code == 200, left.text
    listed = (await client.get("/api/v1/conversations", headers=alice.headers)).json()["conversations"]
    assert listed[0]["contact"]["name"] == "Ana Pérez" and listed[0]["contact"]["email"] == "ana@example.com"
    assert listed[0]["contact"]["id"]  # a row of the account's contacts


@pytest.fixture
def server(database) -> Iterator[str]:
    with serve_in_thread(Settings(database_url=database.url)) as address:
        yield address


async def test_the_operators_reply_reaches_the_visitor_live(server) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=60) as client:
        owner = await sign_up(client, "olga")
        bot = await web_bot(client, owner, [SITE])
        visitor = await new_visitor(client, bot)
        started = await client.post(bot.path("conversation"), headers=visitor)
        conversation_id = started.json()["conversation"]["id"]
        assert (await client.get(bot.path("events"), headers=bearer(bot.key))).status_code == 403

        async with client.stream("GET", bot.path("events"), headers={"Origin": SITE, **visitor}) as live:
            assert live.status_code == 200 and live.headers["access-control-allow-origin"] == SITE
            lines = live.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 10) == ": connected"
            await client.post(
                f"/api/v1/conversations/{conversation_id}/takeover",
                headers=owner.headers,
                json={"name": "Olga"},
            )
            await client.post(
                f"/api/v1/conversations/{conversation_id}/operator-messages",
                headers=owner.headers,
                json={"content": "Hi, Olga here."},
            )
            received = ""
            while received.count("\n\n") < 2 or "Olga here" not in received:
                received += await asyncio.wait_for(anext(lines), 10) + "\n"
        events = read_events(received)
        assert events[0] == (
            "status",
            {
                "conversation": {
                    "id": conversation_id,
                    "status": "active",
                    "human_requested": False,
                    "operator": "Olga",
                    "created_at": None,
                }
            },
        )
        assert events[1][0] == "message"
        assert (events[1][1]["role"], events[1][1]["content"], events[1][1]["sender_name"]) == (
            "operator",
            "Hi, Olga here.",
            "Olga",
        )


async def test_the_widget_and_the_console_are_served(client) -> None:
    script = await client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"  # its strings are UTF-8
    assert "tertulia-widget" in script.text and "/api/v1/widget/" in script.text
    page = await client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY" and "/console/console.js" in page.text
    assert (await client.get("/console", follow_redirects=False)).headers["location"] == "/console/"
    assert (await client.get("/console/console.css")).headers["content-type"].startswith("text/css")
    typed = await client.get("/console/inbox", follow_redirects=False)  # a route of the page, typed
    assert typed.status_code == 307 and typed.headers["location"] == "/console/"
