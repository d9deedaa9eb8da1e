"""ChatBotKit files (docs/chatbotkit-face.md §7.6): create, then upload the bytes — in the
request (a data: URL, an http(s) URL to fetch, multipart, or a raw body), or, as the Node
SDK does, by asking for a signed upload URL and PUTting the bytes there without a token —
then download, sync, or attach to datasets (datasets.py)."""

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from tertulia.core import files
from tertulia.core.errors import Invalid
from tertulia.core.knowledge.fetching import FetchLimits, fetch_url
from tertulia.core.principal import owned
from tertulia.faces.chatbotkit.bots import Body
from tertulia.faces.chatbotkit.common import Caller, Paging, given_meta, merged_meta, ms, page_response
from tertulia.faces.deps import RuntimeDep, SessionDep
from tertulia.faces.inputs import clean
from tertulia.runtime import Runtime
from tertulia.store.tables import File

router = APIRouter(prefix="/file", tags=["chatbotkit"])

# Files attached to a dataset are indexed before the reply, as records are, up to this long.
INDEX_WAIT_SECONDS = 120.0
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*?),(?P<data>.*)$", re.DOTALL)


def file_public(file: File) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": file.id,
        "createdAt": ms(file.created_at),
        "updatedAt": ms(file.updated_at),
        "meta": file.meta or {},
    }
    for name in ("name", "description"):
        if getattr(file, name):
            body[name] = getattr(file, name)
    return body


def limits(runtime: Runtime) -> files.Limits:
    settings = runtime.settings
    return files.Limits(settings.max_upload_bytes, settings.max_unpacked_bytes)


def _details(body: dict[str, Any]) -> dict[str, Any]:
    clean(body, "body")
    values: dict[str, Any] = {}
    for name, longest in (("name", files.MAX_NAME), ("description", 4000)):
        if body.get(name) is not None:
            if not isinstance(body[name], str) or len(body[name]) > longest:
                raise Invalid(f"{name} must be text of at most {longest} characters", {"field": name})
            values[name] = body[name]
    return values


def _api_prefix(request: Request) -> str:
    return "/api/v1" if request.url.path.startswith("/api/v1/") else "/v1"


def _absolute(request: Request, path: str) -> str:
    """An absolute URL on this server, as the client reached it (the SDKs need one)."""
    return str(request.base_url).rstrip("/") + _api_prefix(request) + path


@router.get("/list")
async def list_files(
    request: Request, principal: Caller, session: SessionDep, paging: Paging = Depends()
) -> Any:
    principal.require("knowledge:read")
    principal.require_any_bot()
    items = [file_public(file) for file in await paging.page(session, owned(principal, File), File)]
    return page_response(request, items)


@router.post("/create")
async def create_file(principal: Caller, session: SessionDep, body: dict = Body) -> dict[str, Any]:
    details = _details(body)
    file = await files.create_file(
        session,
        principal,
        files.FileDetails(details.get("name"), details.get("description"), given_meta(body)),
    )
    return {"id": file.id}


@router.get("/{file_id}/fetch")
async def fetch_file(file_id: str, principal: Caller, session: SessionDep) -> dict[str, Any]:
    return file_public(await files.get_file(session, principal, file_id))


@router.post("/{file_id}/update")
async def update_file(
    file_id: str, principal: Caller, session: SessionDep, body: dict = Body
) -> dict[str, Any]:
    file = await files.get_file(session, principal, file_id)
    changes = _details(body)
    meta = merged_meta(file.meta or {}, body)
    if meta is not None:
        changes["meta"] = meta
    await files.update_file(session, principal, file.id, changes)
    return {"id": file.id}


@router.post("/{file_id}/delete")
async def delete_file(
    file_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    await files.delete_file(session, principal, file_id, runtime.vectors)
    return {"id": file_id}


@router.post("/{file_id}/sync")
async def sync_file(
    file_id: str, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Indexes the file again in every dataset it is attached to."""
    await files.sync(session, principal, file_id, runtime.jobs, limits(runtime), INDEX_WAIT_SECONDS)
    return {"id": file_id}


# --- upload and download ----------------------------------------------------------------------


@router.post("/{file_id}/upload")
async def upload_file(
    file_id: str, request: Request, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """The bytes in any of the forms ChatBotKit takes, or — for `{"file": {size, type, name}}`
    — an `uploadRequest` the client sends them to."""
    await files.get_file(session, principal, file_id)  # someone else's: not found, body unread
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async with request.form() as form:  # closes the spooled upload
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Invalid("send the file in the form field 'file'", {"field": "file"})
            data = await upload.read()
        file = await files.store_content(
            session, principal, file_id, data, upload.content_type, limits(runtime), upload.filename
        )
        return {"id": file.id}
    if kind != "application/json":
        data = await request.body()
        file = await files.store_content(session, principal, file_id, data, kind or None, limits(runtime))
        return {"id": file.id}
    try:
        body = await request.json()
    except ValueError as error:
        raise Invalid("the body is not valid JSON") from error
    given = body.get("file") if isinstance(body, dict) else None
    if isinstance(given, dict):
        file, secret = await files.issue_upload(
            session,
            principal,
            file_id,
            given.get("size"),  # type: ignore[arg-type]  # checked there
            given.get("type") if isinstance(given.get("type"), str) else None,
            given.get("name") if isinstance(given.get("name"), str) else None,
            limits(runtime),
        )
        headers = {"Content-Length": str(file.upload_size), "Content-Type": file.upload_type or ""}
        if file.name:
            headers["Content-Disposition"] = disposition(file.name)
        url = _absolute(request, f"/file/{file.id}/content?token={secret}")
        return {"id": file.id, "uploadRequest": {"method": "PUT", "url": url, "headers": headers}}
    if isinstance(given, str) and given.startswith("data:"):
        media_type, data = _data_url(given)
        file = await files.store_content(session, principal, file_id, data, media_type, limits(runtime))
        return {"id": file.id}
    if isinstance(given, str) and given.lower().startswith(("http://", "https://")):
        fetch_limits = FetchLimits(max_bytes=runtime.settings.max_upload_bytes)
        async with httpx.AsyncClient(timeout=fetch_limits.timeout_seconds) as client:
            fetched = await fetch_url(
                given, client, fetch_limits, allow_private=runtime.settings.allow_private_urls
            )
        file = await files.store_content(
            session, principal, file_id, fetched.data, fetched.media_type, limits(runtime), fetched.filename
        )
        return {"id": file.id}
    raise Invalid("file must be {size, type, name}, a data: URL or an http(s) URL", {"field": "file"})


def _data_url(value: str) -> tuple[str, bytes]:
    match = _DATA_URL.match(value)
    if match is None or ";base64" not in match["params"]:
        raise Invalid("file must be a base64 data: URL (data:<type>;base64,…)", {"field": "file"})
    try:
        return match["type"] or "application/octet-stream", base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise Invalid("the data: URL is not valid base64", {"field": "file"}) from error


@router.put("/{file_id}/content")
async def put_content(
    file_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    token: Annotated[str, Query(min_length=16, max_length=128)],
) -> dict[str, Any]:
    """Where a signed upload URL points: the link's token is the only credential."""
    data = await request.body()
    file = await files.redeem_upload(session, file_id, token, data, limits(runtime))
    return {"id": file.id}


@router.get("/{file_id}/content")
async def get_content(
    file_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(min_length=64, max_length=64)],
) -> Response:
    """Where a signed download URL points."""
    file, data = await files.redeem_download(session, runtime.secret, file_id, expires, signature)
    return _bytes(file, data)


@router.get("/{file_id}/download")
async def download_file(
    file_id: str, request: Request, principal: Caller, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The bytes (204 while there are none); with `Accept: application/json`, a signed URL
    to them instead."""
    file, data = await files.read_content(session, principal, file_id)
    if data is None:
        return Response(status_code=204)
    if "application/json" in request.headers.get("accept", ""):
        expires, signature = files.signed_download(runtime.secret, file)
        url = _absolute(request, f"/file/{file.id}/content?expires={expires}&signature={signature}")
        return JSONResponse({"url": url})
    return _bytes(file, data)


def _bytes(file: File, data: bytes) -> Response:
    return Response(
        data,
        media_type=file.media_type or files.DEFAULT_MEDIA_TYPE,
        headers={"Content-Disposition": disposition(file.name or file.id)},
    )


def disposition(name: str) -> str:
    """`attachment` with the name, encoded so that any name fits in a header (RFC 6266)."""
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"
