"""Speech to text through an OpenAI-compatible POST {base_url}/audio/transcriptions: OpenAI
itself, or a self-hosted server speaking the same API (faster-whisper-server, LocalAI, vLLM …)."""

import httpx

from tertulia.core.errors import UpstreamFailed
from tertulia.providers.base import SPEECH_SAMPLE_RATE, Transcript, pcm_as_wav
from tertulia.providers.remote_http import RemoteEndpoint, RetryPolicy, remote_http_client

PROVIDER = "OpenAI-compatible transcription server"


class OpenAICompatibleTranscriber:
    def __init__(
        self,
        model_id: str,
        api_key: str | None,
        base_url: str,
        timeout_seconds: float,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._model_id = model_id
        self._url = base_url.rstrip("/") + "/audio/transcriptions"
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._owns_client = client is None
        self._client = client or remote_http_client(read_timeout=timeout_seconds)
        self._endpoint = RemoteEndpoint(PROVIDER, model_id, api_key, self._client, retry)

    @property
    def model_id(self) -> str:
        return self._model_id

    async def transcribe(self, pcm: bytes, language: str | None) -> Transcript:
        fields = {"model": self._model_id, "response_format": "json"}
        if language:
            fields["language"] = language
        files = {"file": ("audio.wav", pcm_as_wav(pcm), "audio/wav")}
        reply = await self._endpoint.post_json(self._url, self._headers, fields, files)
        text = reply.get("text") if isinstance(reply, dict) else None
        if not isinstance(text, str):
            raise UpstreamFailed(
                f"{PROVIDER} sent a transcription without text for model {self._model_id!r}",
                {"provider": PROVIDER, "model": self._model_id},
            )
        detected = reply.get("language")
        return Transcript(
            text.strip(),
            detected if isinstance(detected, str) else language,
            len(pcm) / 2 / SPEECH_SAMPLE_RATE,
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
