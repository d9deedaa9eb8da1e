"""Which speech-to-text model this server uses: an OpenAI-compatible transcription server
when one is configured, else the packaged Whisper base model when it is installed (and not
switched off), else none."""

from tertulia.providers.base import Transcriber
from tertulia.providers.local_whisper import LocalWhisper, is_installed
from tertulia.providers.openai_transcription import OpenAICompatibleTranscriber
from tertulia.settings import Settings


def transcriber_for(settings: Settings) -> Transcriber | None:
    if settings.transcription_base_url:
        key = settings.transcription_api_key
        return OpenAICompatibleTranscriber(
            settings.transcription_model,
            key.get_secret_value() if key is not None else None,
            settings.transcription_base_url,
            settings.provider_timeout_seconds,
        )
    if settings.local_transcription and is_installed():
        return LocalWhisper(settings.model_cache_dir, settings.transcription_threads)
    return None
