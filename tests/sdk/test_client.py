"""ChatAgentClient against a real server: signing in, bots, conversations and messages, the
caller's own httpx client, timeouts, and the `tertulia.sdk` name."""

import httpx
import pytest

import tertulia.sdk
from chatagent import APITimeoutError, AuthenticationError, ChatAgentClient, NotFoundError
from tests.sdk.conftest import PASSWORD, STEADY, new_conversation, signed_up


def test_register_signs_the_client_in_and_login_signs_another_in(base_url: str) -> None:
    with ChatAgentClient(base_url) as client:
        registered = client.auth.register(
            {"username": "carol", "nickname": "Carol", "email": "carol@example.com", "password": PASSWORD}
        )
        assert registered["success"] is True and registered["token_type"] == "bearer"
        assert client.access_token == registered["access_token"]
        me = client.auth.me()
        assert (me["id"], me["username"], me["nickname"]) == (registered["user_info"]["id"], "carol", "Carol")

    with ChatAgentClient(base_url) as other:
        logged_in = other.auth.login("carol", PASSWORD)
        assert other.access_token == logged_in["access_token"]
        assert other.auth.me()["id"] == me["id"]


def test_a_client_built_from_a_username_and_password_logs_in_when_first_needed(base_url: str) -> None:
    signed_up(base_url, "dave").close()

    with ChatAgentClient(base_url, username="dave", password=PASSWORD) as client:
        assert client.access_token is None
        assert client.auth.me()["username"] == "dave"
        assert client.access_token

    with ChatAgentClient(base_url, username="dave", password="wrong password") as wrong:
        with pytest.raises(AuthenticationError) as refused:
            wrong.auth.me()
    assert refused.value.status_code == 401 and refused.value.code == "UNAUTHORIZED"


def test_an_expired_token_is_renewed_with_the_clients_login(base_url: str) -> None:
    signed_up(base_url, "erin").close()

    with ChatAgentClient(base_url, "an-expired-token", username="erin", password=PASSWORD) as client:
        assert client.auth.me()["username"] == "erin"
        assert client.access_token != "an-expired-token"

    with ChatAgentClient(base_url, "an-expired-token") as without_login:
        with pytest.raises(AuthenticationError):
            without_login.auth.me()


def test_bots_are_created_listed_read_updated_started_stopped_and_deleted(alice: ChatAgentClient) -> None:
    helpdesk = alice.bots.create(
        {
            "name": "Helpdesk",
            "description": "Answers questions",
            "platform_type": "web",
            "platform_config": {"webhook_url": "https://example.com/hook", "api_key": "platform-secret"},
            "llm_config": {"temperature": 0.2, "system_prompt": "Be brief."},
        }
    )
    alice.bots.create(name="Sales", platform_type="telegram")

    assert helpdesk["platform_config"]["api_key"] == "********"
    assert helpdesk["llm_config"]["temperature"] == 0.2 and helpdesk["is_active"] is False
    assert alice.bots.list()["total"] == 2
    assert [bot["name"] for bot in alice.bots.list(search="Help")["bots"]] == ["Helpdesk"]
    assert [bot["name"] for bot in alice.bots.list(platform_type="telegram")["bots"]] == ["Sales"]
    page = alice.bots.list(limit=1, offset=1)
    assert (len(page["bots"]), page["total"], page["limit"], page["offset"]) == (1, 2, 1, 1)

    updated = alice.bots.update(helpdesk["id"], {"description": "Answers everything"}, name="Helpdesk 2")
    assert (updated["name"], updated["description"]) == ("Helpdesk 2", "Answers everything")
    assert updated["llm_config"]["system_prompt"] == "Be brief."
    assert alice.bots.get(helpdesk["id"]) == updated

    started = alice.bots.start(helpdesk["id"])
    assert started["success"] is True and started["bot_id"] == helpdesk["id"]
    status = alice.bots.status(helpdesk["id"])
    assert status["is_running"] is True and status["start_time"]
    assert [bot["name"] for bot in alice.bots.list(is_active=True)["bots"]] == ["Helpdesk 2"]
    alice.bots.stop(helpdesk["id"])
    assert alice.bots.status(helpdesk["id"])["is_running"] is False

    assert alice.bots.delete(helpdesk["id"])["success"] is True
    with pytest.raises(NotFoundError):
        alice.bots.get(helpdesk["id"])
    assert alice.bots.list()["total"] == 1


def test_conversations_and_their_messages(alice: ChatAgentClient, bob: ChatAgentClient) -> None:
    bot = alice.bots.create(name="Geographer", llm_config=STEADY)
    conversation = alice.conversations.create(
        bot_id=bot["id"], title="Capitals", platform_chat_id="chat_1", context={"language": "en"}
    )
    assert conversation["status"] == "active" and conversation["context"] == {"language": "en"}

    exchange = alice.conversations.send_message(
        conversation["id"],
        "What is the capital of France? Answer in one word.",
        metadata={"client_id": "web_client_123"},
    )

    asked, answered = exchange["user_message"], exchange["bot_response"]
    assert asked["sender_type"] == "user" and asked["metadata"] == {"client_id": "web_client_123"}
    assert answered["sender_type"] == "bot" and "Paris" in answered["content"]
    history = alice.conversations.list_messages(conversation["id"])
    assert [message["id"] for message in history["messages"]] == [asked["id"], answered["id"]]
    assert alice.conversations.list_messages(conversation["id"], limit=1, offset=1)["messages"] == [
        history["messages"][1]
    ]
    listed = alice.conversations.list(bot_id=bot["id"], status="active")
    assert [(item["id"], item["message_count"]) for item in listed["conversations"]] == [
        (conversation["id"], 2)
    ]
    assert alice.conversations.get(conversation["id"])["title"] == "Capitals"
    # Another account sees nothing of it.
    assert bob.conversations.list()["total"] == 0
    with pytest.raises(NotFoundError):
        bob.conversations.list_messages(conversation["id"])

    alice.conversations.delete(conversation["id"])
    with pytest.raises(NotFoundError):
        alice.conversations.get(conversation["id"])


def test_requests_go_through_the_callers_httpx_client_which_stays_open(base_url: str) -> None:
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda request: seen.append(request.url.path)]}) as http:
        with ChatAgentClient(base_url, http_client=http) as client:
            client.auth.register(username="frank", email="frank@example.com", password=PASSWORD)
            client.bots.list()
        assert not http.is_closed
        assert seen == ["/api/v1/auth/register", "/api/v1/bots/"]


def test_a_reply_slower_than_the_timeout_is_a_timeout_error(alice: ChatAgentClient) -> None:
    conversation_id = new_conversation(alice, max_tokens=4)
    impatient = httpx.Timeout(30.0, read=0.05)  # far less than the model takes to answer

    with ChatAgentClient(alice.base_url, alice.access_token, timeout=impatient) as client:
        with pytest.raises(APITimeoutError) as late:
            client.conversations.send_message(conversation_id, "Name three colours.")

    assert late.value.status_code is None and late.value.code == "TIMEOUT"
    assert isinstance(late.value.__cause__, httpx.ReadTimeout)


def test_tertulia_sdk_is_the_same_sdk() -> None:
    assert tertulia.sdk.ChatAgentClient is ChatAgentClient
    assert set(tertulia.sdk.__all__) == set(__import__("chatagent").__all__)


def test_plugins_are_listed_installed_and_used_through_the_sdk(alice: ChatAgentClient) -> None:
    from chatagent import NotFoundError

    available = {plugin["id"] for plugin in alice.plugins.available()["plugins"]}
    assert {"calculator", "weather"} <= available
    bot = alice.bots.create(name="Sums", llm_config={"temperature": 0.0, "max_tokens": 48})

    installed = alice.plugins.install(bot["id"], "calculator")

    assert installed["enabled"] is True and alice.plugins.list(bot["id"])["total"] == 1
    conversation = alice.conversations.create(bot_id=bot["id"])
    reply = alice.conversations.send_message(conversation["id"], "How much is 17 times 23?")["bot_response"]
    assert reply["metadata"]["tool_calls"][0]["result"]["result"] == "391"
    alice.plugins.uninstall(bot["id"], "calculator")
    assert alice.plugins.list(bot["id"])["plugins"] == []
    with pytest.raises(NotFoundError):
        alice.plugins.install(bot["id"], "telepathy")


def test_multimodal_and_monitoring_through_the_sdk(alice: ChatAgentClient, bob: ChatAgentClient) -> None:
    import io

    from PIL import Image

    formats = alice.multimodal.formats()
    assert "png" in formats["formats"]["image"] and formats["capabilities"]["image_processing"] is True
    picture = io.BytesIO()
    Image.new("RGB", (640, 480), "white").save(picture, format="PNG")
    processed = alice.multimodal.process(("white.png", picture.getvalue()), options={"resize": [320, 240]})
    assert processed["success"] is True and processed["media_type"] == "image"
    assert (processed["metadata"]["width"], processed["metadata"]["height"]) == (640, 480)

    figures = alice.monitoring.metrics()
    assert figures["total_requests"] >= 2 and figures["cpu_usage"] is None  # not an admin
    assert bob.monitoring.metrics()["total_requests"] < figures["total_requests"]
    assert alice.monitoring.logs(level="ERROR")["logs"] == []
