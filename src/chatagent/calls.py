"""One API call described as data (method, path, body), so that the sync and the async client
send the very same requests and read their replies the same way."""

import json
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeAlias

import httpx

from chatagent.errors import ChatAgentError, error_from_response

JSON: TypeAlias = dict[str, Any]
# A file to upload: a path, raw bytes, an open binary file, or httpx's own
# (filename, content) and (filename, content, content_type) tuples.
FileInput: TypeAlias = (
    str
    | os.PathLike[str]
    | bytes
    | IO[bytes]
    | tuple[str, bytes | IO[bytes]]
    | tuple[str, bytes | IO[bytes], str]
)
FilePart: TypeAlias = tuple[str, bytes | IO[bytes], str]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, str] | None = None
    files: list[tuple[str, FilePart]] | None = None
    authenticated: bool = True
    # register and login: the client keeps the access token the reply carries.
    keeps_token: bool = False


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ones left unset; datetimes as ISO 8601."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in params.items()
        if value is not None
    }


def body(given: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> JSON:
    """A request body passed as a dict (as the document's examples do), as keywords, or both."""
    return {**(given or {}), **fields}


def form(**fields: Mapping[str, Any] | None) -> dict[str, str]:
    """JSON objects sent as multipart form fields (the document's `metadata`, `options`)."""
    return {
        name: json.dumps(value, ensure_ascii=False) for name, value in fields.items() if value is not None
    }


def file_part(file: FileInput, default_name: str = "upload") -> FilePart:
    """Any FileInput as httpx's (filename, content, content_type)."""
    if isinstance(file, tuple):
        name, content = file[0], file[1]
        return name, content, file[2] if len(file) == 3 else _guess_type(name)
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        return path.name, path.read_bytes(), _guess_type(path.name)
    if isinstance(file, bytes):
        return default_name, file, "application/octet-stream"
    name = os.path.basename(str(getattr(file, "name", "") or default_name))
    return name, file, _guess_type(name)


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def read_reply(response: httpx.Response) -> Any:
    """The reply's JSON, or the typed error the server's envelope describes."""
    if response.status_code >= 400:
        raise error_from_response(response)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise ChatAgentError(
            f"{response.request.url} answered {response.status_code} with something that is not JSON "
            f"({response.headers.get('content-type', 'no content type')}); is the base URL right?",
            status_code=response.status_code,
            code="INVALID_RESPONSE",
        ) from None
