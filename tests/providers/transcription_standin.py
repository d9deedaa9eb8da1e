"""A local stand-in for OpenAI's speech to text, POST /v1/audio/transcriptions, on its wire
protocol: a multipart form with `file` and `model` (and optional `language`,
`response_format`), a Bearer key, and OpenAI's error bodies for a wrong key, a missing field
or a file that is not audio. It answers with the text a test scripts and keeps what it got.
"""

import io
import wave
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.providers.standins import API_KEY


@dataclass
class Heard:
    model: str
    language: str | None
    response_format: str | None
    filename: str
    channels: int
    sample_rate: int
    seconds: float


@dataclass
class TranscriptionStandIn:
    text: str = "The invoice number is 48213."
    received: list[Heard] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._app = Starlette(routes=[Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)

    async def _transcribe(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        async with request.form() as form:
            upload, model = form.get("file"), form.get("model")
            if not isinstance(upload, UploadFile) or not isinstance(model, str) or not model:
                return _error(400, "you must provide a model and a file", "missing_required_parameter")
            data = await upload.read()
            language, response_format = form.get("language"), form.get("response_format")
        try:
            with wave.open(io.BytesIO(data)) as reader:
                channels, rate, frames = reader.getnchannels(), reader.getframerate(), reader.getnframes()
        except (wave.Error, EOFError):
            return _error(400, "Invalid file format.", "invalid_value")
        self.received.append(
            Heard(
                model,
                language if isinstance(language, str) else None,
                response_format if isinstance(response_format, str) else None,
                upload.filename or "",
                channels,
                rate,
                frames / rate,
            )
        )
        return JSONResponse({"text": self.text})


def _error(status: int, message: str, code: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status)
