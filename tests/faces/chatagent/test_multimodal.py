"""ChatAgent /multimodal (chatagent-api.md, 多模态处理): images read for text and faces and
resized, speech transcribed by the packaged Whisper model (or a transcription server), video
taken apart, documents read by the ingestion parsers; bad files refused with a clear 4xx;
results sent into a conversation or a knowledge base; made files downloadable by their owner."""

import io
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

from tertulia.store.session import Database
from tertulia.store.tables import MediaFile, utcnow
from tests.conftest import AppFactory
from tests.core.knowledge.samples import make_docx, make_pdf
from tests.faces.chatagent import media_samples as samples
from tests.faces.chatagent.conftest import User, sign_up
from tests.faces.chatagent.test_conversations import create_bot, create_conversation
from tests.faces.chatagent.test_documents import finished, new_base, search
from tests.providers.standins import API_KEY, serving
from tests.providers.transcription_standin import TranscriptionStandIn

SPOKEN = "The invoice number is four eight two one three"


def digits(text: str) -> str:
    """The digits of a transcript: Whisper writes spoken digits as 48213 or 4-8-213, by CPU."""
    return re.sub(r"\D", "", text)


async def process(
    client: httpx.AsyncClient,
    user: User,
    name: str,
    data: bytes,
    options: dict[str, Any] | None = None,
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post(
        "/api/v1/multimodal/process",
        headers=user.headers,
        files={"file": (name, io.BytesIO(data), content_type)},
        data={"options": json.dumps(options)} if options is not None else None,
    )


def processed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["processing_time"] >= 0
    return dict(body)


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["request_id"] and body["timestamp"].endswith("Z")
    return dict(body["error"])


@dataclass(frozen=True)
class Speech:
    path: Path
    data: bytes


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Speech:
    path = samples.speech_wav(SPOKEN, tmp_path_factory.mktemp("speech"))
    return Speech(path, path.read_bytes())


# --- the document's examples -------------------------------------------------------------------


async def test_formats_example_lists_formats_and_what_this_server_can_do(client, alice) -> None:
    response = await client.get("/api/v1/multimodal/formats", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    formats = body["formats"]
    assert set(formats) == {"image", "audio", "video", "document", "spreadsheet"}
    assert {"jpg", "jpeg", "png", "gif", "bmp", "webp"} <= set(formats["image"])
    assert {"mp3", "wav", "flac", "m4a", "ogg"} <= set(formats["audio"])
    assert {"mp4", "avi", "mov", "mkv", "webm"} <= set(formats["video"])
    assert {"pdf", "docx", "txt", "md"} <= set(formats["document"])
    assert {"xlsx", "csv"} <= set(formats["spreadsheet"])
    assert body["capabilities"] | {"ocr_languages": None} == {
        "text_extraction": True,
        "image_processing": True,
        "ocr": True,
        "ocr_languages": None,
        "audio_transcription": True,
        "video_analysis": True,
        "face_detection": True,
        "object_detection": False,
    }
    assert {"spa", "chi_sim", "eng"} <= set(body["capabilities"]["ocr_languages"])
    assert body["limits"]["max_file_bytes"] == 25 * 1024 * 1024


async def test_formats_need_a_credential(client) -> None:
    refused(await client.get("/api/v1/multimodal/formats"), 401, "UNAUTHORIZED")


async def test_process_example_describes_resizes_and_compresses_an_image(client, alice) -> None:
    """The document's request: extract_text, transcribe, resize [800, 600], compress."""
    options = {
        "extract_text": True,
        "extract_images": False,
        "transcribe": True,
        "detect_faces": False,
        "resize": [800, 600],
        "compress": True,
    }
    photo = samples.photo_jpeg(1920, 1080)
    body = processed(await process(client, alice, "photo.jpg", photo, options, "image/jpeg"))
    assert body["media_type"] == "image"
    assert body["metadata"] | {"mode": None} == {
        "width": 1920,
        "height": 1080,
        "format": "JPEG",
        "size": len(photo),
        "mode": None,
    }
    assert body["content"] == ""  # a gradient has no text
    names = [url.rsplit("/", 1)[1] for url in body["processed_files"]]
    assert names == ["thumbnail.jpg", "processed.jpg"]

    processed_url = body["processed_files"][1]
    download = await client.get(processed_url, headers=alice.headers)
    assert download.status_code == 200 and download.headers["content-type"] == "image/jpeg"
    assert "processed.jpg" in download.headers["content-disposition"]
    resized = Image.open(io.BytesIO(download.content))
    assert resized.size == (800, 450)  # fits within 800×600, the 16:9 shape kept
    assert len(download.content) < len(photo)
    thumbnail = Image.open(
        io.BytesIO((await client.get(body["processed_files"][0], headers=alice.headers)).content)
    )
    assert max(thumbnail.size) == 256


async def test_an_image_can_be_converted_to_another_format(client, alice) -> None:
    body = processed(
        await process(client, alice, "logo.png", samples.astronaut(), {"format": "webp", "thumbnail": False})
    )
    assert [file["name"] for file in body["files"]] == ["processed.webp"]
    file = body["files"][0]
    assert file["media_type"] == "image/webp" and file["metadata"] == {"width": 512, "height": 512}
    download = await client.get(file["url"], headers=alice.headers)
    assert Image.open(io.BytesIO(download.content)).format == "WEBP"


# --- OCR and faces ----------------------------------------------------------------------------


async def test_ocr_reads_spanish_and_chinese_text(client, alice) -> None:
    image = samples.text_image(["La tienda abre a las nueve.", "退货期限为三十天。"])
    body = processed(await process(client, alice, "aviso.png", image, {"thumbnail": False}))
    assert "La tienda abre a las nueve" in body["content"]
    assert "退货期限为三十天" in body["content"]
    assert body["files"] == [] and body["processed_files"] == []


async def test_ocr_languages_can_be_chosen_among_those_installed(client, alice) -> None:
    image = samples.text_image(["退货期限为三十天。"])
    body = processed(await process(client, alice, "aviso.png", image, {"ocr_languages": ["chi_sim"]}))
    assert "退货期限为三十天" in body["content"]
    error = refused(
        await process(client, alice, "aviso.png", image, {"ocr_languages": ["klingon"]}),
        400,
        "VALIDATION_ERROR",
    )
    assert error["details"]["field"] == "options.ocr_languages" and "spa" in error["details"]["allowed"]


async def test_faces_are_found_in_photographs_of_people_and_not_elsewhere(client, alice) -> None:
    options = {"detect_faces": True, "extract_text": False, "thumbnail": False}
    one = processed(await process(client, alice, "astronaut.png", samples.astronaut(), options))
    assert one["metadata"]["faces_detected"] == 1
    box = one["metadata"]["faces"][0]
    assert 150 < box["x"] + box["width"] / 2 < 300 and box["y"] < 200  # her face, top middle

    two = processed(
        await process(
            client, alice, "crew.png", samples.side_by_side(samples.astronaut(), samples.astronaut()), options
        )
    )
    assert two["metadata"]["faces_detected"] == 2

    none = processed(await process(client, alice, "rocket.jpg", samples.rocket(), options))
    assert none["metadata"]["faces_detected"] == 0 and none["metadata"]["faces"] == []


# --- audio and video --------------------------------------------------------------------------


async def test_speech_is_transcribed_by_the_packaged_whisper_model(client, alice, speech: Speech) -> None:
    body = processed(await process(client, alice, "note.wav", speech.data))
    assert body["media_type"] == "audio"
    assert "invoice number" in body["content"].lower() and "48213" in digits(body["content"])
    metadata = body["metadata"]
    assert metadata["format"] == "wav" and 2.5 < metadata["duration"] < 4
    assert metadata["language"] == "en" and metadata["transcription_model"] == "whisper-base"
    assert metadata["sample_rate"] == 22050 and metadata["channels"] == 1


async def test_compressed_audio_gives_its_details_and_its_sound_on_request(
    client, alice, speech: Speech
) -> None:
    ogg = samples.converted(speech.path, speech.path.parent, "ogg")
    body = processed(
        await process(client, alice, "note.ogg", ogg, {"transcribe": False, "extract_audio": True})
    )
    assert body["media_type"] == "audio" and body["content"] == ""
    assert body["metadata"]["format"] == "ogg" and body["metadata"]["audio_codec"] == "vorbis"
    assert [file["name"] for file in body["files"]] == ["audio.wav"]
    wav = await client.get(body["processed_files"][0], headers=alice.headers)
    assert wav.headers["content-type"] == "audio/wav" and wav.content.startswith(b"RIFF")


async def test_a_video_gives_key_frames_with_their_faces_and_its_speech(
    client, alice, speech: Speech
) -> None:
    video = samples.video_mp4(samples.astronaut(), speech.path, speech.path.parent)
    options = {"extract_images": True, "extract_text": False, "detect_faces": True, "max_frames": 3}
    body = processed(await process(client, alice, "clip.mp4", video, options))
    assert body["media_type"] == "video"
    assert "48213" in digits(body["content"])
    metadata = body["metadata"]
    assert metadata["width"] == 512 and metadata["height"] == 512 and metadata["has_audio"] is True
    assert metadata["video_codec"] == "mpeg4" and metadata["audio_codec"] == "aac"
    assert 1 <= metadata["frames_extracted"] <= 3 and metadata["faces_detected"] == 1
    assert [file["name"] for file in body["files"]] == [
        f"frame_{n:03d}.jpg" for n in range(1, metadata["frames_extracted"] + 1)
    ]
    frame = await client.get(body["processed_files"][0], headers=alice.headers)
    assert Image.open(io.BytesIO(frame.content)).size == (512, 512)


async def test_transcription_can_go_through_an_openai_compatible_server(
    make_client: AppFactory, speech: Speech
) -> None:
    standin = TranscriptionStandIn(text="La factura número 48213.")
    with serving(standin):  # type: ignore[arg-type]
        client = await make_client(
            transcription_base_url=f"{standin.url}/v1",
            transcription_api_key=API_KEY,
            transcription_model="whisper-1",
        )
        alice = await sign_up(client, "alice")
        body = processed(await process(client, alice, "nota.wav", speech.data, {"language": "es"}))
        assert body["content"] == "La factura número 48213."
        assert body["metadata"]["transcription_model"] == "whisper-1" and body["metadata"]["language"] == "es"
        heard = standin.received[0]
        assert (heard.model, heard.language, heard.channels, heard.sample_rate) == (
            "whisper-1",
            "es",
            1,
            16000,
        )
        assert abs(heard.seconds - body["metadata"]["duration"]) < 0.1

        wrong_key = await make_client(
            transcription_base_url=f"{standin.url}/v1", transcription_api_key="sk-wrong"
        )
        bob = await sign_up(wrong_key, "bob")
        error = refused(await process(wrong_key, bob, "nota.wav", speech.data), 502, "UPSTREAM_ERROR")
        assert "sk-wrong" not in json.dumps(error)


async def test_without_a_transcription_model_transcribing_is_unavailable(
    make_client: AppFactory, speech: Speech
) -> None:
    client = await make_client(local_transcription=False)
    alice = await sign_up(client, "alice")
    formats = (await client.get("/api/v1/multimodal/formats", headers=alice.headers)).json()
    assert formats["capabilities"]["audio_transcription"] is False
    error = refused(await process(client, alice, "note.wav", speech.data), 503, "SERVICE_UNAVAILABLE")
    assert error["details"]["field"] == "options.transcribe"
    body = processed(await process(client, alice, "note.wav", speech.data, {"transcribe": False}))
    assert body["content"] == "" and body["metadata"]["duration"] > 2


# --- documents and spreadsheets -----------------------------------------------------------------


async def test_documents_and_spreadsheets_are_read_by_the_ingestion_parsers(client, alice) -> None:
    markdown = "# Envíos\n\nEl envío exprés cuesta 12 euros.\n\n## 退货\n\n退货期限为三十天。"
    body = processed(await process(client, alice, "envios.md", markdown.encode()))
    assert body["media_type"] == "document"
    assert "El envío exprés cuesta 12 euros." in body["content"] and "退货期限为三十天。" in body["content"]
    assert body["metadata"]["format"] == "text/markdown" and "Envíos > 退货" in body["metadata"]["headings"]

    book = samples.workbook(
        {"Precios": [["Producto", "Precio"], ["Router", 49], ["Cable", 5]], "Notas": [["ok"]]}
    )
    sheet = processed(await process(client, alice, "precios.xlsx", book))
    assert sheet["media_type"] == "spreadsheet" and sheet["metadata"]["sheets"] == ["Precios", "Notas"]
    assert "Router" in sheet["content"] and "49" in sheet["content"]

    csv = processed(await process(client, alice, "precios.csv", b"producto,precio\nrouter,49\n"))
    assert csv["media_type"] == "spreadsheet" and "router" in csv["content"]

    pdf = processed(await process(client, alice, "guide.pdf", make_pdf(["Page one.", "Page two."], "Guide")))
    assert pdf["media_type"] == "document" and pdf["content"] == "Page one.\n\nPage two."
    assert pdf["metadata"] | {"size": None} == {
        "format": "application/pdf",
        "size": None,
        "title": "Guide",
        "sections": 2,
        "pages": 2,
    }
    word = processed(await process(client, alice, "guide.docx", make_docx()))
    assert word["media_type"] == "document" and "Use the package manager on Linux." in word["content"]


# --- bad input ------------------------------------------------------------------------------------


async def test_a_type_that_is_not_read_is_refused_with_the_supported_formats(client, alice) -> None:
    error = refused(
        await process(client, alice, "tool.exe", b"MZ\x90\x00" + bytes(200)), 400, "VALIDATION_ERROR"
    )
    assert error["details"]["reason"] == "unsupported_media_type"
    assert "png" in error["details"]["supported"]["image"]
    error = refused(await process(client, alice, "data.bin", bytes(range(256)) * 8), 400, "VALIDATION_ERROR")
    assert error["details"]["reason"] == "unsupported_media_type"


async def test_broken_and_mislabelled_files_are_refused_clearly(client, alice) -> None:
    whole = samples.photo_jpeg(640, 480)
    for name, data, words in [
        ("cut.jpg", whole[: len(whole) // 3], "damaged"),
        ("fake.png", b"just some text, not a picture", "not a readable image"),
        ("noise.mp3", b"ID3" + bytes(range(256)) * 20, "could not read"),
        ("fake.mp4", b"hello, I am not a video", "not readable audio or video"),
        ("broken.pdf", b"%PDF-1.7\n garbage", "PDF"),
    ]:
        error = refused(await process(client, alice, name, data), 400, "VALIDATION_ERROR")
        assert words in error["message"], (name, error)
    refused(await process(client, alice, "empty.png", b""), 400, "VALIDATION_ERROR")


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(client, alice) -> None:
    bomb = samples.bomb_png(50_000, 50_000)
    assert len(bomb) < 1000
    error = refused(await process(client, alice, "bomb.png", bomb), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit"] == 40_000_000
    # The server still answers normally afterwards.
    processed(await process(client, alice, "ok.png", samples.astronaut(), {"thumbnail": False}))


async def test_size_duration_and_page_limits_are_clear_4xx(make_client: AppFactory, speech: Speech) -> None:
    client = await make_client(
        max_upload_bytes=200_000, media_max_duration_seconds=2, media_max_pages=3, media_max_pixels=100_000
    )
    alice = await sign_up(client, "alice")
    error = refused(
        await process(client, alice, "big.jpg", samples.photo_jpeg(4000, 3000)), 413, "PAYLOAD_TOO_LARGE"
    )
    assert "larger than" in error["message"] or "request body" in error["message"]
    error = refused(await process(client, alice, "long.wav", speech.data), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit_seconds"] == 2
    error = refused(
        await process(client, alice, "long.pdf", make_pdf(["one", "two", "three", "four", "five"])),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert error["details"] == {"field": "file", "pages": 5, "limit_pages": 3}
    error = refused(
        await process(client, alice, "wide.jpg", samples.photo_jpeg(400, 300)), 413, "PAYLOAD_TOO_LARGE"
    )
    assert error["details"]["pixels"] == 400 * 300


async def test_options_that_are_not_valid_are_a_400(client, alice) -> None:
    image = samples.astronaut()
    for options, field in [
        ("not json", "options"),
        ("[1, 2]", "options"),
        (json.dumps({"resize": [0, 10]}), "options.resize.0"),
        (json.dumps({"quality": 101}), "options.quality"),
        (json.dumps({"format": "tiff"}), "options.format"),
        (json.dumps({"max_frames": 1000}), "options.max_frames"),
        (json.dumps({"conversation_id": "conv_x", "message_role": "robot"}), "options.message_role"),
    ]:
        response = await client.post(
            "/api/v1/multimodal/process",
            headers=alice.headers,
            files={"file": ("a.png", io.BytesIO(image), "image/png")},
            data={"options": options},
        )
        assert refused(response, 400, "VALIDATION_ERROR")["details"]["field"] == field


# --- where results go, and who sees them ---------------------------------------------------------


async def test_results_go_into_a_conversation_as_a_message(client, alice) -> None:
    conversation = await create_conversation(client, alice, await create_bot(client, alice, "Helpdesk"))
    image = samples.text_image(["La tienda abre a las nueve."])
    body = processed(
        await process(
            client, alice, "aviso.png", image, {"conversation_id": conversation["id"], "thumbnail": False}
        )
    )
    message_id = body["delivered"]["message_id"]
    assert body["delivered"]["conversation_id"] == conversation["id"]
    messages = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=alice.headers)
    [message] = messages.json()["messages"]
    assert message["id"] == message_id and message["sender_type"] == "user"
    assert "La tienda abre a las nueve" in message["content"] and message["message_type"] == "image"
    assert message["metadata"]["file_name"] == "aviso.png" and message["metadata"]["source"] == "multimodal"

    blank = processed(
        await process(
            client,
            alice,
            "blank.png",
            samples.png(Image.new("RGB", (200, 100), "white")),
            {"conversation_id": conversation["id"]},
        )
    )
    assert blank["delivered"] == {"conversation_skipped": "no text was found in the file"}


async def test_results_go_into_a_knowledge_base_and_are_found(client, alice, speech: Speech) -> None:
    base_id = await new_base(client, alice)
    body = processed(await process(client, alice, "call.wav", speech.data, {"knowledge_base_id": base_id}))
    delivered = body["delivered"]
    assert delivered["knowledge_base_id"] == base_id
    assert (await finished(client, alice, delivered["job_id"]))["status"] == "done"
    document = await client.get(
        f"/api/v1/knowledge/bases/{base_id}/documents/{delivered['document_id']}", headers=alice.headers
    )
    assert document.json()["name"] == "call.wav" and document.json()["metadata"]["media_type"] == "audio"
    results = await search(client, alice, base_id, "invoice number", mode="text")
    assert results and "48213" in digits(results[0]["content"])

    sheet = processed(
        await process(
            client,
            alice,
            "precios.xlsx",
            samples.workbook({"Precios": [["Producto", "Precio"], ["Router", 49]]}),
            {"knowledge_base_id": base_id},
        )
    )
    assert (await finished(client, alice, sheet["delivered"]["job_id"]))["status"] == "done"
    [hit] = await search(client, alice, base_id, "Router", mode="text")
    assert hit["metadata"]["sheet"] == "Precios"  # the file itself was ingested, sheets and all


async def test_another_accounts_destinations_and_files_do_not_exist(client, alice, bob) -> None:
    conversation = await create_conversation(client, alice, await create_bot(client, alice, "Helpdesk"))
    base_id = await new_base(client, alice)
    image = samples.text_image(["Hola"])
    for options in ({"conversation_id": conversation["id"]}, {"knowledge_base_id": base_id}):
        theirs = refused(await process(client, bob, "hola.png", image, options), 404, "NOT_FOUND")
        missing_id = {key: value + "0" for key, value in options.items()}
        nobodys = refused(await process(client, bob, "hola.png", image, missing_id), 404, "NOT_FOUND")
        assert theirs["message"] == nobodys["message"]
    listed = await client.get("/api/v1/multimodal/files", headers=bob.headers)
    assert listed.json()["total"] == 0  # nothing was processed for bob

    mine = processed(await process(client, alice, "hola.png", image))
    [file] = mine["files"]
    for path in (file["url"], f"/api/v1/multimodal/files/{file['id']}"):
        assert (await client.get(path, headers=alice.headers)).status_code == 200
        refused(await client.get(path, headers=bob.headers), 404, "NOT_FOUND")
    refused(
        await client.delete(f"/api/v1/multimodal/files/{file['id']}", headers=bob.headers), 404, "NOT_FOUND"
    )
    refused(
        await client.get(file["url"].replace("thumbnail.jpg", "other.jpg"), headers=alice.headers),
        404,
        "NOT_FOUND",
    )


async def test_made_files_are_listed_deleted_and_gone_once_expired(client, alice, database: Database) -> None:
    first = processed(await process(client, alice, "a.png", samples.astronaut(), {"resize": [64, 64]}))
    listed = (await client.get("/api/v1/multimodal/files", headers=alice.headers)).json()
    assert listed["total"] == 2 and {f["name"] for f in listed["files"]} == {"thumbnail.jpg", "processed.png"}
    assert all(f["source_name"] == "a.png" for f in listed["files"])

    thumbnail, made = first["files"]
    deleted = await client.delete(f"/api/v1/multimodal/files/{thumbnail['id']}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    refused(await client.get(thumbnail["url"], headers=alice.headers), 404, "NOT_FOUND")

    async with database.session() as session:  # the retention period passes
        await session.execute(
            update(MediaFile)
            .where(MediaFile.id == made["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    refused(await client.get(made["url"], headers=alice.headers), 404, "NOT_FOUND")
    assert (await client.get("/api/v1/multimodal/files", headers=alice.headers)).json()["total"] == 0
