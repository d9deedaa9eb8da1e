"""The OpenAI face owns exactly its three /v1 routes: ChatBotKit's /v1/<resource>/... paths
are ChatBotKit's, never swallowed by it, and its own paths answer in OpenAI's shapes."""

import pytest

from tests.faces.openai.conftest import KeyHolder


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/bot/list"), ("POST", "/v1/bot/create"), ("GET", "/v1/conversation/list")],
)
async def test_chatbotkit_paths_are_not_the_openai_face(remote, alice: KeyHolder, method, path) -> None:
    response = await remote.request(method, path, headers={"Authorization": f"Bearer {alice.key}"}, json={})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "error" not in body and "object" not in body  # not OpenAI's shapes
    assert "id" in body or ("items" in body and isinstance(body["cursor"], str))  # ChatBotKit's


async def test_v1_models_is_the_openai_handler(remote, alice: KeyHolder) -> None:
    listed = await remote.get("/v1/models", headers={"Authorization": f"Bearer {alice.key}"})
    assert listed.status_code == 200
    body = listed.json()
    assert body["object"] == "list" and alice.bot_id in [model["id"] for model in body["data"]]
    refused = await remote.get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


async def test_a_wrong_method_on_an_openai_path_is_a_405_in_openai_shape(remote, alice: KeyHolder) -> None:
    response = await remote.get("/v1/chat/completions", headers={"Authorization": f"Bearer {alice.key}"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]
