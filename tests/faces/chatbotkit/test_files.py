"""ChatBotKit files: made and listed with the real Python SDK, their bytes sent in every form
ChatBotKit takes (the signed upload URL the Node SDK uses, a data: URL, multipart, a raw
body), downloaded, and attached to a dataset whose search and bot then know their content."""

import base64

import httpx
import pytest
from chatbotkit import APIError, ChatBotKit

from tests.conftest import AppFactory
from tests.core.knowledge.test_fetching import serving
from tests.faces.chatbotkit.conftest import STEADY_MODEL, sdk, token_for

NOTE = b"The Tertulia ferry to Isla Verde leaves at 07:15 from pier nine."


def auth(cbk: ChatBotKit) -> dict[str, str]:
    return {"Authorization": f"Bearer {cbk.options.token}"}


async def test_a_file_is_made_listed_updated_and_deleted_with_the_sdk(cbk: ChatBotKit) -> None:
    made = await cbk.file.create({"name": "ferry.txt", "description": "timetable", "meta": {"k": 1}})
    fetched = await cbk.file.fetch(made.id)
    assert (fetched.name, fetched.description, fetched.meta) == ("ferry.txt", "timetable", {"k": 1})
    assert fetched.created_at > 1_700_000_000_000

    await cbk.file.update(made.id, {"meta": {"$update": {"lang": "en"}}, "name": "ferry-2.txt"})
    fetched = await cbk.file.fetch(made.id)
    assert fetched.meta == {"k": 1, "lang": "en"} and fetched.name == "ferry-2.txt"
    page = await cbk.file.list()
    assert [item.id for item in page.items] == [made.id] and page.cursor == made.id

    await cbk.file.delete(made.id)
    with pytest.raises(APIError) as gone:
        await cbk.file.fetch(made.id)
    assert gone.value.code == "NOT_FOUND"


async def test_the_signed_upload_url_takes_the_bytes_once_without_a_token(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    file_id = (await cbk.file.create({"name": "ferry.txt"})).id
    empty = await client.get(f"/api/v1/file/{file_id}/download", headers=auth(cbk))
    assert empty.status_code == 204  # made, nothing uploaded yet

    asked = await client.post(
        f"/api/v1/file/{file_id}/upload",
        headers=auth(cbk),
        json={"file": {"size": len(NOTE), "type": "text/plain", "name": "ferry.txt"}},
    )
    assert asked.status_code == 200, asked.text
    upload = asked.json()["uploadRequest"]
    assert upload["method"] == "PUT" and upload["url"].startswith("http://testserver/api/v1/file/")
    assert upload["headers"]["Content-Length"] == str(len(NOTE))

    wrong_size = await client.put(upload["url"], content=NOTE + b"!", headers={"Content-Type": "text/plain"})
    assert wrong_size.status_code == 400 and wrong_size.json()["code"] == "BAD_REQUEST"
    forged = await client.put(upload["url"][:-4] + "AAAA", content=NOTE)
    assert forged.status_code == 401 and forged.json()["code"] == "NOT_AUTHENTICATED"
    put = await client.put(upload["url"], content=NOTE, headers=upload["headers"])  # no Authorization
    assert put.status_code == 200 and put.json() == {"id": file_id}
    again = await client.put(upload["url"], content=NOTE, headers=upload["headers"])
    assert again.status_code == 401  # the link worked once

    downloaded = await client.get(f"/api/v1/file/{file_id}/download", headers={**auth(cbk), "Accept": "*/*"})
    assert downloaded.content == NOTE and downloaded.headers["content-type"].startswith("text/plain")
    assert "ferry.txt" in downloaded.headers["content-disposition"]
    # With Accept: application/json, a signed link instead; it needs no token, and a forged one fails.
    asked_link = await client.get(
        f"/v1/file/{file_id}/download", headers={**auth(cbk), "Accept": "application/json"}
    )
    link = asked_link.json()["url"]
    assert (await client.get(link)).content == NOTE
    expires = int(httpx.URL(link).params["expires"])
    longer = link.replace(f"expires={expires}", f"expires={expires + 3600}")  # a link made to last
    assert (await client.get(longer)).status_code == 401


async def test_the_bytes_come_in_every_other_form_too(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    async def content(file_id: str) -> bytes:
        return (
            await client.get(f"/v1/file/{file_id}/download", headers={**auth(cbk), "Accept": "*/*"})
        ).content

    data_url = (await cbk.file.create({"name": "a.txt"})).id
    sent = await client.post(
        f"/v1/file/{data_url}/upload",
        headers=auth(cbk),
        json={"file": "data:text/plain;base64," + base64.b64encode(NOTE).decode()},
    )
    assert sent.json() == {"id": data_url} and await content(data_url) == NOTE

    multipart = (await cbk.file.create({})).id
    sent = await client.post(
        f"/v1/file/{multipart}/upload", headers=auth(cbk), files={"file": ("b.txt", NOTE, "text/plain")}
    )
    assert sent.json() == {"id": multipart} and await content(multipart) == NOTE
    assert (await cbk.file.fetch(multipart)).name == "b.txt"  # named by the upload

    raw = (await cbk.file.create({"name": "c.md"})).id
    sent = await client.post(
        f"/v1/file/{raw}/upload", headers={**auth(cbk), "Content-Type": "text/markdown"}, content=NOTE
    )
    assert sent.json() == {"id": raw} and await content(raw) == NOTE

    for bad in (
        {"file": "data:text/plain;base64,@@@"},
        {"file": 7},
        {"file": {"size": -1, "type": "text/plain"}},
    ):
        refused = await client.post(f"/v1/file/{raw}/upload", headers=auth(cbk), json=bad)
        assert refused.status_code == 400 and refused.json()["code"] == "BAD_REQUEST", bad
    assert await content(raw) == NOTE  # a refused upload leaves the bytes there were


async def test_an_attached_file_is_searched_and_grounds_the_bot(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    file_id = (await cbk.file.create({"name": "ferry.txt"})).id
    await client.post(
        f"/v1/file/{file_id}/upload", headers={**auth(cbk), "Content-Type": "text/plain"}, content=NOTE
    )
    dataset = (await cbk.dataset.create({"name": "travel"})).id

    attached = await client.post(
        f"/v1/dataset/{dataset}/file/{file_id}/attach", headers=auth(cbk), json={"type": "source"}
    )
    assert attached.json() == {"id": file_id}
    listed = (await client.get(f"/v1/dataset/{dataset}/file/list", headers=auth(cbk))).json()
    assert [item["id"] for item in listed["items"]] == [file_id]
    found = (
        await client.post(f"/v1/dataset/{dataset}/search", headers=auth(cbk), json={"search": "ferry"})
    ).json()
    assert "07:15" in found["records"][0]["text"] and found["records"][0]["source"] == "ferry.txt"

    bot = await cbk.bot.create({"name": "Ferry", "model": STEADY_MODEL, "datasetId": dataset})
    conversation = await cbk.conversation.create({"botId": bot.id})
    answer = await cbk.conversation.complete(
        conversation.id, {"text": "When does the ferry to Isla Verde leave?"}
    )
    assert "07:15" in answer.text

    # A new upload, synced: the dataset knows the new text and no longer the old.
    await client.post(
        f"/v1/file/{file_id}/upload",
        headers={**auth(cbk), "Content-Type": "text/plain"},
        content=b"The Tertulia ferry to Isla Verde now leaves at 08:30 from pier two.",
    )
    assert (await client.post(f"/v1/file/{file_id}/sync", headers=auth(cbk), json={})).json() == {
        "id": file_id
    }
    found = (
        await client.post(f"/v1/dataset/{dataset}/search", headers=auth(cbk), json={"search": "ferry"})
    ).json()
    assert "08:30" in found["records"][0]["text"] and all("07:15" not in r["text"] for r in found["records"])

    detached = await client.post(f"/v1/dataset/{dataset}/file/{file_id}/detach", headers=auth(cbk), json={})
    assert detached.json() == {"id": file_id}
    found = (
        await client.post(f"/v1/dataset/{dataset}/search", headers=auth(cbk), json={"search": "ferry"})
    ).json()
    assert found["records"] == []
    listed = (await client.get(f"/v1/dataset/{dataset}/file/list", headers=auth(cbk))).json()
    assert listed == {"items": [], "cursor": ""}
    again = await client.post(f"/v1/dataset/{dataset}/file/{file_id}/detach", headers=auth(cbk), json={})
    assert again.status_code == 404


async def test_deleting_an_attached_file_removes_what_it_put_in_the_dataset(
    client: httpx.AsyncClient, cbk: ChatBotKit
) -> None:
    file_id = (await cbk.file.create({"name": "ferry.txt"})).id
    await client.post(
        f"/v1/file/{file_id}/upload", headers={**auth(cbk), "Content-Type": "text/plain"}, content=NOTE
    )
    dataset = (await cbk.dataset.create({})).id
    await client.post(f"/v1/dataset/{dataset}/file/{file_id}/attach", headers=auth(cbk), json={})
    await cbk.file.delete(file_id)
    found = (
        await client.post(f"/v1/dataset/{dataset}/search", headers=auth(cbk), json={"search": "ferry"})
    ).json()
    assert found["records"] == []

    empty = (await cbk.file.create({"name": "nothing.txt"})).id
    refused = await client.post(f"/v1/dataset/{dataset}/file/{empty}/attach", headers=auth(cbk), json={})
    assert refused.status_code == 400 and "upload" in refused.json()["message"]


async def test_another_accounts_files_cannot_be_reached(client: httpx.AsyncClient, cbk: ChatBotKit) -> None:
    file_id = (await cbk.file.create({"name": "mine.txt"})).id
    await client.post(
        f"/v1/file/{file_id}/upload", headers={**auth(cbk), "Content-Type": "text/plain"}, content=NOTE
    )
    dataset = (await cbk.dataset.create({})).id
    async with sdk(client, await token_for(client, "stranger")) as stranger:
        headers = {"Authorization": f"Bearer {stranger.options.token}"}
        assert (await stranger.file.list()).items == []
        for method, path in (
            ("GET", f"/v1/file/{file_id}/fetch"),
            ("GET", f"/v1/file/{file_id}/download"),
            ("POST", f"/v1/file/{file_id}/upload"),
            ("POST", f"/v1/file/{file_id}/delete"),
            ("POST", f"/v1/file/{file_id}/sync"),
            ("POST", f"/v1/dataset/{dataset}/file/{file_id}/attach"),
        ):
            answer = await client.request(
                method, path, headers=headers, json={"file": "data:text/plain;base64,eA=="}
            )
            assert answer.status_code == 404, (path, answer.text)
        own = (await stranger.dataset.create({})).id
        theirs = await client.post(f"/v1/dataset/{own}/file/{file_id}/attach", headers=headers, json={})
        assert theirs.status_code == 404
    downloaded = await client.get(f"/v1/file/{file_id}/download", headers={**auth(cbk), "Accept": "*/*"})
    assert downloaded.content == NOTE


async def test_a_url_is_fetched_and_a_site_that_fails_is_a_scoped_fetch_error(
    make_client: AppFactory,
) -> None:
    client = await make_client(allow_private_urls=True)  # the test's site is on this machine
    with serving() as site:
        async with sdk(client, await token_for(client, "fetcher")) as kit:
            file_id = (await kit.file.create({"name": "page.html"})).id
            sent = await client.post(
                f"/v1/file/{file_id}/upload", headers=auth(kit), json={"file": f"http://{site}/page.html"}
            )
            assert sent.status_code == 200, sent.text
            downloaded = await client.get(
                f"/v1/file/{file_id}/download", headers={**auth(kit), "Accept": "*/*"}
            )
            assert b"A fetched page." in downloaded.content

            failing = await client.post(
                f"/v1/file/{file_id}/upload", headers=auth(kit), json={"file": f"http://{site}/missing"}
            )
    assert failing.status_code == 502
    assert failing.json()["code"] == "FETCH_BAD_GATEWAY" and "404" in failing.json()["message"]
