"""The ChatBotKit face driven by the real Node SDK (`@chatbotkit/sdk`, pinned in
node/package.json and installed by ./scripts/test) against a real server on a TCP port."""

import json
import shutil
import subprocess
from pathlib import Path

import anyio
import httpx

from tertulia.settings import Settings
from tertulia.store.session import Database
from tests.faces.chatagent.conftest import sign_up
from tests.live_server import serve_in_thread
from tests.providers.standins import API_KEY, StandIn

NODE = Path(__file__).parent / "node"


def run_scenario(base_url: str, token: str, script: str = "scenario.mjs") -> dict:
    assert shutil.which("node"), "Node.js is needed for the ChatBotKit Node SDK tests"
    assert (NODE / "node_modules" / "@chatbotkit" / "sdk").is_dir(), (
        "run ./scripts/test: it installs the Node SDK"
    )
    result = subprocess.run(
        ["node", script],
        cwd=NODE,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "BASE_URL": base_url, "TOKEN": token},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_the_node_sdk_runs_the_whole_scenario(database: Database, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database.url, chroma_path=tmp_path / "chroma", anonymous_rate_limit="1000/minute"
    )
    with serve_in_thread(settings) as address:
        base_url = f"http://{address}"
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            user = await sign_up(client, "node")
            key = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "node"})
            token = key.json()["key"]
        out = await anyio.to_thread.run_sync(run_scenario, base_url, token)

    assert out["bot"]["name"] == "Node helper" and out["bot"]["createdAt"] > 1_700_000_000_000
    assert len(out["records"]["items"]) == 2 and out["records"]["cursor"] == out["records"]["items"][-1]["id"]
    assert "21:40" in out["search"]["records"][0]["text"] and out["search"]["records"][0]["source"] == "faq"
    assert "21:40" in out["answer"]["text"] and out["answer"]["end"]["reason"] in ("stop", "length")
    kinds = [item["type"] for item in out["stream"]]
    assert "token" in kinds and kinds[-1] == "result" and kinds.count("result") == 1
    tokens = "".join(item["data"]["token"] for item in out["stream"] if item["type"] == "token")
    assert tokens == out["stream"][-1]["data"]["text"]
    assert [message["type"] for message in reversed(out["messages"]["items"])] == [
        "user",
        "bot",
        "user",
        "bot",
    ]
    assert "21:40" in out["stateless"]["text"]  # stateless, and still grounded in the bot's dataset
    assert out["upload"] == {"id": out["file"]} and "07:15" in out["downloaded"]
    assert out["datasetFiles"] == [out["file"]]
    assert "07:15" in out["fileSearch"]["records"][0]["text"]
    assert out["abilities"] == ["Search"] and out["botSkillset"] == out["skillset"]
    assert out["sessionAnswer"]["text"] and out["sessionRefusal"] == {
        "name": "FetchError",
        "code": "NOT_AUTHORIZED",
    }
    assert out["botSession"]["id"] == out["bot"]["id"] and out["botSession"]["conversationId"]
    assert out["botSessionSend"]["id"]
    pages = out["pages"]
    # The first conversation, the bot session's, and three more.
    assert [len(page) for page in pages] == [2, 2, 1] and len({item for page in pages for item in page}) == 5
    assert out["limitedBots"] == [out["bot"]["id"]]
    assert out["limitedRefusal"] == {"name": "FetchError", "code": "NOT_AUTHORIZED"}
    assert out["childBots"] == [out["childBot"]] and out["childBot"] not in out["parentBots"]
    assert out["strangerRefusal"] == {"name": "FetchError", "code": "NOT_AUTHENTICATED"}
    assert out["missing"] == {"name": "FetchError", "code": "NOT_FOUND"}


async def test_the_node_sdk_reads_a_failing_models_errors(
    database: Database, tmp_path: Path, standin: StandIn
) -> None:
    settings = Settings(
        database_url=database.url,
        chroma_path=tmp_path / "chroma",
        openai_api_key=API_KEY,
        openai_base_url=standin.url + "/v1",
    )
    standin.reset(mode="server_error")
    with serve_in_thread(settings) as address:
        base_url = f"http://{address}"
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            user = await sign_up(client, "node")
            key = await client.post("/api/v1/auth/api-keys", headers=user.headers, json={"name": "node"})
        out = await anyio.to_thread.run_sync(run_scenario, base_url, key.json()["key"], "failures.mjs")
    # As JSON: the SDK's FetchError with the scoped code; as a stream: one error item.
    assert out["refusal"] == {"name": "FetchError", "code": "MODEL_BAD_GATEWAY"}
    [error] = out["stream"]
    assert error["type"] == "error" and error["data"]["code"] == "MODEL_BAD_GATEWAY"
    assert API_KEY not in error["data"]["message"]
