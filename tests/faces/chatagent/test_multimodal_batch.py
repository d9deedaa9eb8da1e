"""ChatAgent /multimodal/batch-process: several files processed by a job, answered at once
when the job is done in time, else as a 202 with the job to follow at /jobs/{id}; and heavy
processing never holding up the server's other requests."""

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AppFactory
from tests.faces.chatagent import media_samples as samples
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_conversations import create_bot, create_conversation
from tests.faces.chatagent.test_documents import finished, new_base, search


async def batch(
    client: httpx.AsyncClient,
    user: User,
    files: list[tuple[str, bytes]],
    options: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(
        "/api/v1/multimodal/batch-process",
        headers=user.headers,
        files=[("files", (name, io.BytesIO(data), "application/octet-stream")) for name, data in files],
        data={"options": json.dumps(options)} if options is not None else None,
    )


def notice() -> bytes:
    return samples.text_image(["La tienda abre a las nueve."])


async def test_batch_example_processes_every_file_and_keeps_the_results_in_the_job(client, alice) -> None:
    """The document's request: files plus options {"extract_text": true}."""
    files = [
        ("aviso.png", notice()),
        ("envios.md", "# Envíos\n\nEl envío exprés cuesta 12 euros.".encode()),
        ("precios.csv", b"producto,precio\nrouter,49\n"),
    ]
    response = await batch(client, alice, files, {"extract_text": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["status"], body["total"], body["succeeded"], body["failed"]) == (
        True,
        "done",
        3,
        3,
        0,
    )
    assert [(r["file_name"], r["media_type"]) for r in body["results"]] == [
        ("aviso.png", "image"),
        ("envios.md", "document"),
        ("precios.csv", "spreadsheet"),
    ]
    assert "La tienda abre a las nueve" in body["results"][0]["content"]
    assert body["results"][0]["processed_files"][0].endswith("/thumbnail.jpg")
    assert "12 euros" in body["results"][1]["content"]

    job = body["job"]
    assert job["kind"] == "multimodal" and job["status"] == "done" and job["progress"] == 1.0
    polled = await client.get(f"/api/v1/jobs/{job['id']}", headers=alice.headers)
    assert polled.json()["result"]["results"] == body["results"]


async def test_a_bad_file_fails_alone_with_the_envelopes_code(client, alice) -> None:
    response = await batch(
        client, alice, [("broken.png", b"\x89PNG\r\n\x1a\nbroken"), ("ok.md", b"# Hola\n\nmundo")]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["succeeded"], body["failed"]) == (False, 1, 1)
    failure, success = body["results"]
    assert failure["success"] is False and failure["file_name"] == "broken.png"
    assert failure["error"]["code"] == "VALIDATION_ERROR" and failure["error"]["status"] == 400
    assert "not an image" in failure["error"]["message"]
    assert success["success"] is True and "mundo" in success["content"]


async def test_a_long_batch_answers_202_and_is_followed_at_its_job(make_client: AppFactory) -> None:
    client = await make_client(media_batch_wait_seconds=0)
    alice = await sign_up(client, "alice")
    response = await batch(client, alice, [("aviso.png", notice()), ("astronaut.png", samples.astronaut())])
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] in ("queued", "running") and body["success"] is False
    job = await finished(client, alice, body["job"]["id"])
    assert job["status"] == "done"
    results = job["result"]["results"]
    assert [r["file_name"] for r in results] == ["aviso.png", "astronaut.png"]
    assert all(r["success"] for r in results)
    for url in (url for result in results for url in result["processed_files"]):
        assert (await client.get(url, headers=alice.headers)).status_code == 200


async def test_batches_are_bounded_and_checked_before_they_start(make_client: AppFactory) -> None:
    client = await make_client(media_batch_max_files=2)
    alice, bob = await sign_up(client, "alice"), await sign_up(client, "bob")
    too_many = await batch(client, alice, [(f"{n}.md", b"# hola") for n in range(3)])
    assert too_many.status_code == 400 and too_many.json()["error"]["details"]["limit"] == 2
    none = await client.post(
        "/api/v1/multimodal/batch-process", headers=alice.headers, data={"options": "{}"}
    )
    assert none.status_code == 400 and none.json()["error"]["details"]["field"] == "files"

    base_id = await new_base(client, alice)
    theirs = await batch(client, bob, [("a.md", b"# hola")], {"knowledge_base_id": base_id})
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "NOT_FOUND"

    mine = (await batch(client, alice, [("a.md", b"# hola")])).json()
    job_path = f"/api/v1/jobs/{mine['job']['id']}"
    assert (await client.get(job_path, headers=bob.headers)).status_code == 404


async def test_a_batch_sends_each_result_where_it_was_asked(client, alice) -> None:
    conversation = await create_conversation(client, alice, await create_bot(client, alice, "Helpdesk"))
    base_id = await new_base(client, alice)
    options = {"conversation_id": conversation["id"], "knowledge_base_id": base_id, "message_role": "system"}
    response = await batch(
        client, alice, [("aviso.png", notice()), ("zorvex.md", b"# Zorvex\n\nHold reset 12 s.")], options
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    for result in results:
        assert (await finished(client, alice, result["delivered"]["job_id"]))["status"] == "done"
    messages = (
        await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=alice.headers)
    ).json()
    assert [m["id"] for m in messages["messages"]] == [r["delivered"]["message_id"] for r in results]
    assert [m["sender_type"] for m in messages["messages"]] == ["system", "system"]
    [hit] = await search(client, alice, base_id, "reset", mode="text")
    assert hit["content"] == "Hold reset 12 s." and hit["metadata"]["heading"] == "Zorvex"


async def test_processing_runs_off_the_event_loop(client, alice, tmp_path: Path) -> None:
    """While a video is being taken apart and transcribed, other requests are answered."""
    speech = samples.speech_wav("Please send the quarterly report before Friday", tmp_path)
    video = samples.video_mp4(samples.astronaut(), speech, tmp_path)
    order: list[str] = []

    async def heavy() -> None:
        response = await client.post(
            "/api/v1/multimodal/process",
            headers=alice.headers,
            files={"file": ("clip.mp4", io.BytesIO(video), "video/mp4")},
            data={"options": json.dumps({"detect_faces": True, "max_frames": 4})},
        )
        assert response.status_code == 200, response.text
        order.append("video")

    async def light() -> None:
        await asyncio.sleep(0.3)  # the video's processing is under way by then
        for _ in range(3):
            response = await client.get("/api/v1/multimodal/formats", headers=alice.headers)
            assert response.status_code == 200
        order.append("formats")

    await asyncio.gather(heavy(), light())
    assert order == ["formats", "video"]
