"""ChatAgent's plugins, example by example from chatagent-api.md, and the tools at work: the
local model answers a sum through the calculator and the weather through Open-Meteo (a local
stand-in speaking its protocol), and both calls are stored with the reply."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.faces.chatagent.conftest import User
from tests.faces.chatagent.open_meteo import CURRENT, OpenMeteo
from tests.faces.chatagent.test_chat import ask, history, new_conversation
from tests.faces.chatagent.test_errors import assert_error
from tests.providers.standins import serving


@pytest.fixture(scope="module")
def open_meteo_server() -> Iterator[OpenMeteo]:
    app = OpenMeteo()
    with serving(app) as url:  # type: ignore[arg-type]
        app.url = url
        yield app


@pytest.fixture
def open_meteo(open_meteo_server: OpenMeteo) -> OpenMeteo:
    open_meteo_server.failing = False
    open_meteo_server.received.clear()
    return open_meteo_server


@pytest.fixture
async def weather_client(make_client, open_meteo: OpenMeteo) -> httpx.AsyncClient:
    return await make_client(weather_forecast_url=open_meteo.url, weather_geocoding_url=open_meteo.url)


async def bot_id_of(client: httpx.AsyncClient, user: User, conversation_id: str) -> str:
    conversation = await client.get(f"/api/v1/conversations/{conversation_id}", headers=user.headers)
    return str(conversation.json()["bot_id"])


async def test_the_available_plugins_in_the_documents_shape(client, alice) -> None:
    response = await client.get("/api/v1/plugins/available", headers=alice.headers)

    assert response.status_code == 200, response.text
    plugins = {plugin["id"]: plugin for plugin in response.json()["plugins"]}
    assert {"calculator", "weather", "datastore", "lead-capture", "request-human"} <= set(plugins)
    weather = plugins["weather"]
    assert {"id", "name", "description", "version", "author", "category", "config_schema"} <= set(weather)
    assert weather["config_schema"]["api_key"] == {
        "type": "string",
        "required": False,
        "description": "An Open-Meteo customer key (only for the commercial API)",
    }
    assert weather["parameters"]["required"] == ["location"]
    assert (await client.get("/api/v1/plugins/available")).status_code == 401


async def test_installing_the_documents_weather_plugin_then_switching_it_off_and_removing_it(
    client, alice, bob
) -> None:
    conversation_id = await new_conversation(client, alice)
    bot_id = await bot_id_of(client, alice, conversation_id)
    body = {"config": {"api_key": "your_weather_api_key", "default_location": "北京"}, "enabled": True}

    installed = await client.post(f"/api/v1/bots/{bot_id}/plugins/weather", headers=alice.headers, json=body)

    assert installed.status_code == 200, installed.text
    assert installed.json() == {
        "bot_id": bot_id,
        "plugin_id": "weather",
        "name": "Weather",
        "enabled": True,
        "config": {"api_key": "********", "default_location": "北京"},  # a key never comes back
    }
    bot = (await client.get(f"/api/v1/bots/{bot_id}", headers=alice.headers)).json()
    assert bot["plugins"] == ["weather"]

    # Switched off: the bot no longer has it, its settings are kept for later.
    body["enabled"] = False
    off = await client.post(f"/api/v1/bots/{bot_id}/plugins/weather", headers=alice.headers, json=body)
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert (await client.get(f"/api/v1/bots/{bot_id}", headers=alice.headers)).json()["plugins"] == []
    listed = (await client.get(f"/api/v1/bots/{bot_id}/plugins", headers=alice.headers)).json()
    assert listed["total"] == 1 and listed["plugins"][0]["enabled"] is False
    assert listed["plugins"][0]["config"]["default_location"] == "北京"

    # Another account's user meets the same 404 as for a bot that does not exist.
    for who, bot in ((bob, bot_id), (alice, "bot_missing")):
        refused = await client.post(f"/api/v1/bots/{bot}/plugins/weather", headers=who.headers, json=body)
        assert_error(refused, 404, "NOT_FOUND")
    assert_error(await client.get(f"/api/v1/bots/{bot_id}/plugins", headers=bob.headers), 404, "NOT_FOUND")
    gone = await client.delete(f"/api/v1/bots/{bot_id}/plugins/weather", headers=bob.headers)
    assert_error(gone, 404, "NOT_FOUND")

    removed = await client.delete(f"/api/v1/bots/{bot_id}/plugins/weather", headers=alice.headers)
    assert removed.status_code == 200 and removed.json()["success"] is True
    assert (await client.get(f"/api/v1/bots/{bot_id}/plugins", headers=alice.headers)).json()["plugins"] == []
    again = await client.delete(f"/api/v1/bots/{bot_id}/plugins/weather", headers=alice.headers)
    assert_error(again, 404, "NOT_FOUND")


async def test_bad_plugin_requests_get_clear_errors_and_change_nothing(client, alice) -> None:
    conversation_id = await new_conversation(client, alice)
    bot_id = await bot_id_of(client, alice, conversation_id)
    url = f"/api/v1/bots/{bot_id}/plugins"

    assert_error(await client.post(f"{url}/telepathy", headers=alice.headers, json={}), 404, "NOT_FOUND")
    unknown = await client.post(f"{url}/weather", headers=alice.headers, json={"config": {"colour": "red"}})
    assert assert_error(unknown, 400, "VALIDATION_ERROR")["unknown"] == ["colour"]
    typed = await client.post(f"{url}/weather", headers=alice.headers, json={"config": {"units": 3}})
    assert assert_error(typed, 400, "VALIDATION_ERROR")["field"] == "config.units"
    shaped = await client.post(f"{url}/weather", headers=alice.headers, json={"config": [], "enabled": "yes"})
    assert_error(shaped, 400, "VALIDATION_ERROR")

    assert (await client.get(url, headers=alice.headers)).json() == {"plugins": [], "total": 0}


async def test_the_local_model_answers_a_percentage_through_the_calculator(client, alice) -> None:
    conversation_id = await new_conversation(client, alice, plugins=["calculator"])

    response = await ask(client, alice, conversation_id, "What is 12.5% of 3,480?")

    assert response.status_code == 200, response.text
    reply = response.json()["bot_response"]
    [call] = reply["metadata"]["tool_calls"]
    assert call["name"] == "calculator" and call["result"]["result"] == "435"
    assert "435" in reply["content"]
    # Stored with the reply: reading the history back shows the same call.
    stored = (await history(client, alice, conversation_id))[-1]
    assert stored["metadata"]["tool_calls"] == [call]


async def test_a_question_that_needs_no_tool_is_answered_without_one(client, alice) -> None:
    conversation_id = await new_conversation(client, alice, plugins=["calculator", "weather"])

    response = await ask(client, alice, conversation_id, "Who wrote Don Quixote?")

    assert response.status_code == 200, response.text
    assert "tool_calls" not in response.json()["bot_response"]["metadata"]


async def test_the_local_model_answers_the_weather_in_madrid_through_open_meteo(
    weather_client: httpx.AsyncClient, open_meteo: OpenMeteo
) -> None:
    from tests.faces.chatagent.conftest import sign_up

    alice = await sign_up(weather_client, "alice")
    conversation_id = await new_conversation(weather_client, alice, plugins=["weather"])

    response = await ask(weather_client, alice, conversation_id, "What's the weather in Madrid?")

    assert response.status_code == 200, response.text
    reply = response.json()["bot_response"]
    [call] = reply["metadata"]["tool_calls"]
    assert call["name"] == "weather" and call["arguments"] == {"location": "Madrid"}
    assert call["result"]["location"] == "Madrid, Spain"
    assert call["result"]["temperature"] == CURRENT["temperature_2m"]
    assert str(CURRENT["temperature_2m"]) in reply["content"]
    # Open-Meteo was asked as its API wants: the place, then the forecast at its coordinates.
    (search_path, search), (forecast_path, forecast) = open_meteo.received
    assert (search_path, search["name"]) == ("/v1/search", "Madrid")
    assert forecast_path == "/v1/forecast" and forecast["latitude"] == "40.4165"
    assert "temperature_2m" in forecast["current"].split(",")


async def test_a_weather_service_that_fails_is_a_stored_tool_error_not_a_failed_reply(
    weather_client: httpx.AsyncClient, open_meteo: OpenMeteo
) -> None:
    from tests.faces.chatagent.conftest import sign_up

    open_meteo.failing = True
    alice = await sign_up(weather_client, "alice")
    conversation_id = await new_conversation(weather_client, alice, plugins=["weather"])

    response = await ask(weather_client, alice, conversation_id, "What's the weather in Madrid?")

    assert response.status_code == 200, response.text
    [call] = response.json()["bot_response"]["metadata"]["tool_calls"]
    assert call["name"] == "weather" and "result" not in call
    assert "refused" in call["error"]


async def test_the_websocket_shows_the_tool_call_and_its_result_before_the_answer(database) -> None:
    import websockets

    from tertulia.settings import Settings
    from tests.faces.chatagent.conftest import sign_up
    from tests.live_server import serve_in_thread

    with serve_in_thread(Settings(database_url=database.url)) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=120) as rest:
            alice = await sign_up(rest, "alice")
            conversation_id = await new_conversation(rest, alice, plugins=["calculator"])
        url = f"ws://{address}/api/v1/ws/conversations/{conversation_id}?token={alice.token}"
        async with websockets.connect(url) as socket:
            await socket.send(json.dumps({"type": "user_message", "content": "How much is 17 times 23?"}))
            frames = []
            while not frames or frames[-1]["type"] not in ("stream_complete", "error"):
                frames.append(json.loads(await socket.recv()))

    kinds = [frame["type"] for frame in frames if frame["type"] != "heartbeat"]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "stream_complete", kinds
    call, result = frames[0], frames[1]
    assert call["tool_call"]["name"] == "calculator"
    assert result["id"] == call["tool_call"]["id"] and result["result"]["result"] == "391"
    assert "391" in frames[-1]["full_content"]


def offered_functions(provider: str, request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The tools a whole request offered, as (name, argument schema), in each API's shape."""
    if provider == "anthropic":
        return [(tool["name"], tool["input_schema"]) for tool in request["tools"]]
    if provider == "google":
        return [(tool["name"], tool["parameters"]) for tool in request["tools"][0]["functionDeclarations"]]
    return [(tool["function"]["name"], tool["function"]["parameters"]) for tool in request["tools"]]


def last_user_text(provider: str, request: dict[str, Any]) -> str:
    if provider == "google":
        return str(request["contents"][-1]["parts"][0]["text"])
    return str(request["messages"][-1]["content"])


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai-compatible", "gpt-standin"), ("anthropic", "claude-standin"), ("google", "gemini-standin")],
)
async def test_a_provider_with_native_tool_calling_is_offered_the_bots_tools_and_picks_one(
    client, alice, standin, provider: str, model: str
) -> None:
    from tests.providers.standins import API_KEY

    base_url = standin.url + "/v1" if provider == "openai-compatible" else standin.url
    configured = await client.put(
        f"/api/v1/providers/{provider}",
        headers=alice.headers,
        json={"api_key": API_KEY, "base_url": base_url},
    )
    assert configured.status_code == 200, configured.text
    standin.script.tool_call = ("calculator", {"expression": "17 * 23"})
    standin.script.reply = ("17 times 23 is 391.",)
    conversation_id = await new_conversation(
        client, alice, plugins=["calculator", "weather"], llm_config={"provider": provider, "model": model}
    )

    response = await ask(client, alice, conversation_id, "How much is seventeen times twenty-three?")

    assert response.status_code == 200, response.text
    reply = response.json()["bot_response"]
    assert reply["content"] == "17 times 23 is 391."
    [call] = reply["metadata"]["tool_calls"]
    assert (call["name"], call["arguments"], call["result"]["result"]) == (
        "calculator",
        {"expression": "17 * 23"},
        "391",
    )
    offered, answered = [request.body for request in standin.received]
    # Natively, every tool of the bot is offered (no words needed), and the model decides.
    functions = offered_functions(provider, offered)
    assert [name for name, _schema in functions] == ["calculator", "weather"]
    assert functions[0][1]["required"] == ["expression"]
    assert "391" in last_user_text(provider, answered)


async def test_lead_capture_and_a_request_for_a_person_are_tools_in_every_face(client, alice) -> None:
    """The Agent v2 tools on a ChatAgent bot: they read the visitor's message themselves (no
    model needed), and a person asked for is answered with the handoff, no model call."""
    conversation_id = await new_conversation(client, alice, plugins=["lead-capture", "request-human"])

    response = await ask(
        client, alice, conversation_id, "I want to talk to a real person, my email is ana@example.com"
    )

    assert response.status_code == 200, response.text
    reply = response.json()["bot_response"]
    assert "person" in reply["content"] and reply["metadata"]["handoff"] is True
    captured, handed = reply["metadata"]["tool_calls"]
    assert (captured["name"], captured["arguments"]) == ("lead-capture", {"email": "ana@example.com"})
    assert handed["name"] == "request-human" and handed["result"]["status"] == "unresolved"
    fetched = await client.get(f"/api/v1/conversations/{conversation_id}", headers=alice.headers)
    conversation = fetched.json()
    assert conversation["status"] == "unresolved"
    assert conversation["context"]["contact"] == {"email": "ana@example.com"}
