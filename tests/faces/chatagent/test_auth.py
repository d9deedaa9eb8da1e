"""ChatAgent /auth over HTTP: sign-up, login, the current user, access tokens and API keys."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import AppFactory
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_errors import assert_error, is_utc_timestamp

# The document's sign-up example, field for field.
DOCUMENT_REGISTER = {
    "username": "user123",
    "nickname": "用户昵称",
    "email": "user@example.com",
    "password": "password123",
    "role": "user",
}
SECRET = "s" * 40


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def forge(secret: str, subject: str, lifetime: timedelta, **claims: Any) -> str:
    issued = datetime.now(UTC)
    payload = {"sub": subject, "iat": issued, "exp": issued + lifetime, "typ": "access", **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


async def create_bot(client: httpx.AsyncClient, user: User, name: str) -> dict[str, Any]:
    response = await client.post("/api/v1/bots/", json={"name": name}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def create_key(client: httpx.AsyncClient, user: User, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/api-keys", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def bot_names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/v1/bots/", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(bot["name"] for bot in response.json()["bots"])


# --- register ---------------------------------------------------------------------------


async def test_the_document_register_example_signs_up_and_answers_with_a_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/auth/register", json=DOCUMENT_REGISTER)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and body["access_token"]
    info = body["user_info"]
    assert {"id", "username", "nickname", "email", "role", "created_at"} <= set(info)
    assert info["id"]
    assert info["username"] == "user123"
    assert info["nickname"] == "用户昵称"
    assert info["email"] == "user@example.com"
    assert info["role"] == "user"
    assert is_utc_timestamp(info["created_at"])
    assert "password" not in response.text and "password123" not in response.text

    me = await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == info["id"]


@pytest.mark.parametrize(
    ("second", "field"),
    [
        pytest.param({"username": "user123", "email": "other@example.com"}, "username", id="same-username"),
        pytest.param({"username": "other", "email": "user@example.com"}, "email", id="same-email"),
        pytest.param({"username": "other", "email": "USER@Example.COM"}, "email", id="same-email-other-case"),
    ],
)
async def test_registering_a_taken_username_or_email_is_a_conflict(
    client: httpx.AsyncClient, second: dict[str, str], field: str
) -> None:
    first = await client.post("/api/v1/auth/register", json=DOCUMENT_REGISTER)
    assert first.status_code == 201

    response = await client.post("/api/v1/auth/register", json={**second, "password": "another password"})

    assert assert_error(response, 409, "DUPLICATE_RESOURCE")["field"] == field
    # The first account is untouched: its password still works, the intruder's does not.
    ok = await client.post("/api/v1/auth/login", json={"username": "user123", "password": "password123"})
    assert ok.status_code == 200
    assert ok.json()["user_info"]["id"] == first.json()["user_info"]["id"]
    refused = await client.post(
        "/api/v1/auth/login", json={"username": "user123", "password": "another password"}
    )
    assert_error(refused, 401, "UNAUTHORIZED")


async def test_the_admin_role_cannot_be_chosen_at_sign_up(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={**DOCUMENT_REGISTER, "role": "admin"})

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "role"
    login = await client.post("/api/v1/auth/login", json={"username": "user123", "password": "password123"})
    assert_error(login, 401, "UNAUTHORIZED")
    again = await client.post("/api/v1/auth/register", json=DOCUMENT_REGISTER)
    assert again.status_code == 201
    assert again.json()["user_info"]["role"] == "user"


# --- login ------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["user123", "user@example.com", "User@Example.com"])
async def test_login_by_username_or_email_answers_as_the_document_shows(
    client: httpx.AsyncClient, login: str
) -> None:
    registered = (await client.post("/api/v1/auth/register", json=DOCUMENT_REGISTER)).json()

    response = await client.post("/api/v1/auth/login", json={"username": login, "password": "password123"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["user_info"]["id"] == registered["user_info"]["id"]
    assert {key: body["user_info"][key] for key in ("username", "nickname", "email", "role")} == {
        "username": "user123",
        "nickname": "用户昵称",
        "email": "user@example.com",
        "role": "user",
    }
    me = await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.json()["username"] == "user123"


async def test_a_wrong_password_and_an_unknown_user_are_refused_alike(
    client: httpx.AsyncClient, alice: User
) -> None:
    wrong = await client.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong horse"})
    unknown = await client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong horse"})

    assert_error(wrong, 401, "UNAUTHORIZED")
    assert_error(unknown, 401, "UNAUTHORIZED")
    assert "access_token" not in wrong.text
    # Nothing tells a guesser which accounts exist.
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


# --- the current user -------------------------------------------------------------------


async def test_me_shows_the_document_fields(client: httpx.AsyncClient) -> None:
    token = (await client.post("/api/v1/auth/register", json=DOCUMENT_REGISTER)).json()["access_token"]

    response = await client.get("/api/v1/auth/me", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert {"id", "username", "nickname", "email", "role", "is_active", "created_at", "updated_at"} <= set(
        body
    )
    assert body["username"] == "user123"
    assert body["nickname"] == "用户昵称"
    assert body["email"] == "user@example.com"
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert is_utc_timestamp(body["created_at"]) and is_utc_timestamp(body["updated_at"])
    assert not {"password", "password_hash"} & set(body)


BAD_CREDENTIALS = [
    pytest.param({}, id="none"),
    pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
    pytest.param({"Authorization": "Bearer garbage"}, id="garbage"),
    pytest.param({"Authorization": "Bearer not.a.jwt"}, id="three-dotted-parts"),
    pytest.param({"Authorization": "Bearer tk_not-a-real-key"}, id="made-up-api-key"),
    pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
]


@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/bots/", "/api/v1/conversations/"])
@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
async def test_missing_or_garbage_credentials_are_unauthorized(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)

    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_is_good_only_while_fresh_and_signed_with_the_server_secret(
    client: httpx.AsyncClient, make_client: AppFactory
) -> None:
    server = await make_client(secret_key=SECRET, access_token_ttl_seconds=60)
    carol = await sign_up(server, "carol")
    issued = jwt.decode(carol.token, SECRET, algorithms=["HS256"])
    assert issued["exp"] - issued["iat"] == 60

    forged_fresh = forge(SECRET, carol.id, timedelta(minutes=1))
    expired = forge(SECRET, carol.id, timedelta(seconds=-1))
    other_secret = forge("o" * 40, carol.id, timedelta(minutes=1))
    no_such_user = forge(SECRET, "usr_nobody", timedelta(minutes=1))
    not_an_access_token = forge(SECRET, carol.id, timedelta(minutes=1), typ="refresh")
    from_another_server = (await sign_up(client, "dave")).token

    assert (await server.get("/api/v1/auth/me", headers=carol.headers)).status_code == 200
    fresh = await server.get("/api/v1/auth/me", headers=bearer(forged_fresh))
    assert fresh.status_code == 200 and fresh.json()["id"] == carol.id
    for token in (expired, other_secret, no_such_user, not_an_access_token, from_another_server):
        response = await server.get("/api/v1/auth/me", headers=bearer(token))
        assert_error(response, 401, "UNAUTHORIZED")
        assert carol.id not in response.text


async def test_register_tells_the_configured_token_lifetime(make_client: AppFactory) -> None:
    server = await make_client(secret_key=SECRET, access_token_ttl_seconds=120)

    response = await server.post("/api/v1/auth/register", json=DOCUMENT_REGISTER)

    assert response.json()["expires_in"] == 120


# --- API keys ---------------------------------------------------------------------------


async def test_an_api_key_is_shown_once_and_works_as_a_bearer_credential(
    client: httpx.AsyncClient, alice: User
) -> None:
    await create_bot(client, alice, "Helpdesk")

    created = await client.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=alice.headers)

    assert created.status_code == 201, created.text
    key = created.json()
    assert key["name"] == "ci"
    assert key["id"] and key["key"]
    assert key["key"].startswith(key["prefix"])
    assert is_utc_timestamp(key["created_at"])

    listed = await client.get("/api/v1/auth/api-keys", headers=alice.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    assert [item["id"] for item in listed.json()["api_keys"]] == [key["id"]]
    assert "key" not in listed.json()["api_keys"][0]
    assert key["key"] not in listed.text

    me = await client.get("/api/v1/auth/me", headers=bearer(key["key"]))
    assert me.status_code == 200
    assert me.json()["id"] == alice.id
    assert await bot_names(client, bearer(key["key"])) == ["Helpdesk"]


async def test_a_revoked_api_key_stops_working(client: httpx.AsyncClient, alice: User) -> None:
    key = await create_key(client, alice, name="ci")
    kept = await create_key(client, alice, name="kept")

    revoked = await client.delete(f"/api/v1/auth/api-keys/{key['id']}", headers=alice.headers)

    assert revoked.status_code == 200
    assert revoked.json()["success"] is True
    for path in ("/api/v1/auth/me", "/api/v1/bots/"):
        assert_error(await client.get(path, headers=bearer(key["key"])), 401, "UNAUTHORIZED")
    assert (await client.get("/api/v1/auth/me", headers=bearer(kept["key"]))).status_code == 200
    listed = (await client.get("/api/v1/auth/api-keys", headers=alice.headers)).json()
    assert [item["id"] for item in listed["api_keys"]] == [kept["id"]]


async def test_a_read_only_key_can_list_bots_but_not_create_one(
    client: httpx.AsyncClient, alice: User
) -> None:
    await create_bot(client, alice, "Helpdesk")
    key = await create_key(client, alice, name="reader", scopes=["bots:read"])
    assert key["scopes"] == ["bots:read"]

    listed = await client.get("/api/v1/bots/", headers=bearer(key["key"]))
    created = await client.post("/api/v1/bots/", json={"name": "Sneaky"}, headers=bearer(key["key"]))

    assert listed.status_code == 200
    assert [bot["name"] for bot in listed.json()["bots"]] == ["Helpdesk"]
    assert_error(created, 403, "FORBIDDEN")
    assert await bot_names(client, alice.headers) == ["Helpdesk"]


async def test_a_scoped_key_cannot_mint_a_key_with_more_power(client: httpx.AsyncClient, alice: User) -> None:
    key = await create_key(client, alice, name="keys", scopes=["keys:write", "bots:read"])

    wider = await client.post("/api/v1/auth/api-keys", json={"name": "wider"}, headers=bearer(key["key"]))
    narrower = await client.post(
        "/api/v1/auth/api-keys",
        json={"name": "narrower", "scopes": ["bots:read"]},
        headers=bearer(key["key"]),
    )

    assert_error(wider, 403, "FORBIDDEN")
    assert narrower.status_code == 201
    assert narrower.json()["scopes"] == ["bots:read"]


async def test_an_unknown_scope_is_refused(client: httpx.AsyncClient, alice: User) -> None:
    response = await client.post(
        "/api/v1/auth/api-keys", json={"name": "x", "scopes": ["bots:everything"]}, headers=alice.headers
    )

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "scopes"


async def test_a_key_bound_to_one_bot_sees_only_that_bot(client: httpx.AsyncClient, alice: User) -> None:
    bot_a = await create_bot(client, alice, "Bot A")
    bot_b = await create_bot(client, alice, "Bot B")
    key = await create_key(client, alice, name="a-only", bot_id=bot_a["id"])
    assert key["bot_id"] == bot_a["id"]
    headers = bearer(key["key"])

    listed = await client.get("/api/v1/bots/", headers=headers)

    assert listed.status_code == 200
    assert [bot["id"] for bot in listed.json()["bots"]] == [bot_a["id"]]
    assert listed.json()["total"] == 1
    assert (await client.get(f"/api/v1/bots/{bot_a['id']}", headers=headers)).status_code == 200
    assert_error(await client.get(f"/api/v1/bots/{bot_b['id']}", headers=headers), 404, "NOT_FOUND")
    assert_error(await client.post(f"/api/v1/bots/{bot_b['id']}/start", headers=headers), 404, "NOT_FOUND")
    assert_error(await client.post("/api/v1/bots/", json={"name": "C"}, headers=headers), 403, "FORBIDDEN")
    status_b = (await client.get(f"/api/v1/bots/{bot_b['id']}/status", headers=alice.headers)).json()
    assert status_b["is_running"] is False


async def test_a_key_cannot_be_bound_to_a_bot_that_does_not_exist(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        "/api/v1/auth/api-keys", json={"name": "x", "bot_id": "bot_missing"}, headers=alice.headers
    )

    assert_error(response, 404, "NOT_FOUND")
    assert (await client.get("/api/v1/auth/api-keys", headers=alice.headers)).json()["total"] == 0


async def test_a_key_expiry_round_trips_and_one_in_the_past_is_refused(
    client: httpx.AsyncClient, alice: User
) -> None:
    future = await client.post(
        "/api/v1/auth/api-keys",
        json={"name": "f", "expires_at": "2099-01-01T00:00:00Z"},
        headers=alice.headers,
    )
    past = await client.post(
        "/api/v1/auth/api-keys",
        json={"name": "p", "expires_at": "2000-01-01T00:00:00Z"},
        headers=alice.headers,
    )

    assert future.status_code == 201, future.text
    assert datetime.fromisoformat(future.json()["expires_at"]) == datetime(2099, 1, 1, tzinfo=UTC)
    assert (await client.get("/api/v1/auth/me", headers=bearer(future.json()["key"]))).status_code == 200
    assert assert_error(past, 400, "VALIDATION_ERROR")["field"] == "expires_at"


async def test_a_key_expiry_without_a_time_zone_is_refused_not_a_server_error(
    client: httpx.AsyncClient, alice: User
) -> None:
    response = await client.post(
        "/api/v1/auth/api-keys",
        json={"name": "n", "expires_at": "2099-01-01T00:00:00"},
        headers=alice.headers,
    )

    assert assert_error(response, 400, "VALIDATION_ERROR")["field"] == "expires_at"
    assert (await client.get("/api/v1/auth/api-keys", headers=alice.headers)).json()["total"] == 0


# --- the JavaScript SDK's camelCase -----------------------------------------------------


async def test_camel_case_fields_from_the_js_sdk_are_accepted(client: httpx.AsyncClient, alice: User) -> None:
    base = await client.post(
        "/api/v1/knowledge/bases",
        json={"name": "FAQ", "chunkSize": 500, "chunkOverlap": 50},
        headers=alice.headers,
    )
    assert base.status_code == 201, base.text
    assert (base.json()["chunk_size"], base.json()["chunk_overlap"]) == (500, 50)

    bot = await client.post(
        "/api/v1/bots/",
        json={
            "name": "我的机器人",
            "platformType": "telegram",
            "avatarUrl": "https://example.com/a.png",
            "llmConfig": {
                "provider": "openai",
                "model": "gpt-3.5-turbo",
                "systemPrompt": "简短回答",
                "maxTokens": 300,
            },
            "knowledgeBaseIds": [base.json()["id"]],
        },
        headers=alice.headers,
    )
    assert bot.status_code == 201, bot.text
    created = bot.json()
    assert created["platform_type"] == "telegram"
    assert created["avatar_url"] == "https://example.com/a.png"
    assert created["llm_config"]["provider"] == "openai"
    assert created["llm_config"]["model"] == "gpt-3.5-turbo"
    assert created["llm_config"]["system_prompt"] == "简短回答"
    assert created["llm_config"]["max_tokens"] == 300
    assert created["knowledge_base_ids"] == [base.json()["id"]]

    conversation = await client.post(
        "/api/v1/conversations/",
        json={"botId": created["id"], "title": "测试对话", "platformChatId": "chat_9"},
        headers=alice.headers,
    )
    assert conversation.status_code == 201, conversation.text
    assert conversation.json()["bot_id"] == created["id"]
    assert conversation.json()["platform_chat_id"] == "chat_9"

    key = await client.post(
        "/api/v1/auth/api-keys", json={"name": "js", "botId": created["id"]}, headers=alice.headers
    )
    assert key.status_code == 201
    assert key.json()["bot_id"] == created["id"]
