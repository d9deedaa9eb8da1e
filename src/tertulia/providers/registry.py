"""Builds the model that serves a choice: a packaged local model or a remote provider.

Core decides *which* model and *whose* credentials (core.models); this layer turns that
into a ready ChatModel or Embedder. A remote provider's key comes from the credentials
given (the bot's or the account's), else from the server's settings; without one the
provider is "not configured", a clear 503 in every face.
"""

from collections.abc import Callable

import httpx

from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import Unavailable
from tertulia.providers import local_embed, local_minilm
from tertulia.providers.anthropic import AnthropicChat
from tertulia.providers.base import ChatModel, Credentials, Embedder, Reranker
from tertulia.providers.google import GeminiChat, GeminiEmbedder
from tertulia.providers.local_embed import local_embedder
from tertulia.providers.local_llm import local_chat_model
from tertulia.providers.local_models import LOCAL_MODELS, is_installed
from tertulia.providers.local_rerank import LocalReranker, model_file
from tertulia.providers.openai_compat import (
    OpenAICompatibleChat,
    OpenAICompatibleEmbedder,
    OpenAICompatibleReranker,
)
from tertulia.providers.remote_http import remote_http_client
from tertulia.settings import Settings

RemoteChat = Callable[..., ChatModel]
REMOTE_CHAT: dict[str, RemoteChat] = {
    "openai": OpenAICompatibleChat,
    "openai-compatible": OpenAICompatibleChat,
    "anthropic": AnthropicChat,
    "google": GeminiChat,
}
REMOTE_EMBED: dict[str, Callable[..., Embedder]] = {
    "openai": OpenAICompatibleEmbedder,
    "openai-compatible": OpenAICompatibleEmbedder,
    "google": GeminiEmbedder,
}
# Where the provider's own key is optional (a local vLLM or Ollama often has none).
KEY_OPTIONAL = frozenset({"openai-compatible"})


class ModelRegistry:
    """One per process; local models are loaded once and shared, remote calls share a client."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def default_chat(self) -> ModelChoice:
        return ModelChoice(self._settings.default_chat_provider, self._settings.default_chat_model, "chat")

    @property
    def default_embedding(self) -> ModelChoice:
        return ModelChoice(
            self._settings.default_embedding_provider, self._settings.default_embedding_model, "embedding"
        )

    @property
    def default_rerank(self) -> ModelChoice | None:
        """The server's cross-encoder, when one is configured: every bot's rerank default."""
        path = self._settings.rerank_model_path
        if path is None:
            return None
        return ModelChoice("local", self._settings.rerank_model_name or path.name, "rerank")

    def local_models(self) -> list[ModelChoice]:
        """The packaged models installed in this environment, by task type."""
        choices = [
            ModelChoice("local", model_id, "chat")
            for model_id, model in LOCAL_MODELS.items()
            if is_installed(model)
        ]
        if local_embed.is_installed():
            choices.append(ModelChoice("local", local_embed.MODEL_ID, "embedding"))
        if local_minilm.is_installed():
            choices.append(ModelChoice("local", local_minilm.MODEL_ID, "embedding"))
        rerank = self.default_rerank
        if (
            rerank is not None
            and self._settings.rerank_model_path
            and model_file(self._settings.rerank_model_path)
        ):
            choices.append(rerank)
        return choices

    def server_configured(self, provider: str) -> bool:
        """Whether the server itself can call `provider` (no account key needed)."""
        if provider == "local":
            return True
        has_url = self._settings.provider_base_url(provider) is not None
        has_key = self._settings.provider_secret(provider) is not None
        return has_url and (has_key or provider in KEY_OPTIONAL)

    def http(self) -> httpx.AsyncClient:
        """The one HTTP client of the process's remote calls (providers, tools)."""
        if self._client is None:
            self._client = remote_http_client(read_timeout=self._settings.provider_timeout_seconds)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _endpoint(self, choice: ModelChoice, credentials: Credentials) -> tuple[str | None, str]:
        """The key and base URL to call `choice` with; refuses an unconfigured provider."""
        api_key = credentials.api_key or self._settings.provider_secret(choice.provider)
        base_url = credentials.base_url or self._settings.provider_base_url(choice.provider)
        details = {"provider": choice.provider, "model": choice.model_id}
        if base_url is None:
            raise Unavailable(f"no base URL is configured for the provider {choice.provider!r}", details)
        if api_key is None and choice.provider not in KEY_OPTIONAL:
            raise Unavailable(f"no API key is configured for the provider {choice.provider!r}", details)
        return api_key, base_url

    def chat_model(self, choice: ModelChoice | None, credentials: Credentials | None = None) -> ChatModel:
        choice = choice or self.default_chat
        if choice.provider == "local":
            return local_chat_model(
                choice.model_id,
                self._settings.model_cache_dir,
                self._settings.llm_threads,
                self._settings.llm_context_tokens,
            )
        build = REMOTE_CHAT.get(choice.provider)
        if build is None:
            raise Unavailable(
                f"the provider {choice.provider!r} cannot serve chat", {"provider": choice.provider}
            )
        api_key, base_url = self._endpoint(choice, credentials or Credentials())
        if choice.provider in ("openai", "openai-compatible"):
            return build(
                choice.model_id, api_key, base_url, self.http(), self._settings.provider_context_tokens
            )
        return build(choice.model_id, api_key, base_url, self.http())

    def embedder(self, choice: ModelChoice | None, credentials: Credentials | None = None) -> Embedder:
        choice = choice or self.default_embedding
        if choice.provider == "local":
            if choice.model_id == local_minilm.MODEL_ID:
                return local_minilm.LocalMiniLMEmbedder(self._settings.llm_threads)
            return local_embedder(choice.model_id, self._settings.llm_threads)
        build = REMOTE_EMBED.get(choice.provider)
        if build is None:
            raise Unavailable(
                f"the provider {choice.provider!r} has no embedding models", {"provider": choice.provider}
            )
        api_key, base_url = self._endpoint(choice, credentials or Credentials())
        return build(choice.model_id, api_key, base_url, self.http(), None)

    def reranker(self, choice: ModelChoice, credentials: Credentials | None = None) -> Reranker:
        """A rerank model: the server's own cross-encoder, or one served over the rerank API
        that OpenAI-compatible servers share."""
        if choice.provider == "local":
            configured = self.default_rerank
            if configured is None or configured.model_id != choice.model_id:
                raise Unavailable(
                    f"this server has no local rerank model {choice.model_id!r}: "
                    "set TERTULIA_RERANK_MODEL_PATH to a cross-encoder exported to ONNX",
                    {"provider": "local", "model": choice.model_id},
                )
            assert self._settings.rerank_model_path is not None
            return LocalReranker(
                choice.model_id, self._settings.rerank_model_path, self._settings.llm_threads
            )
        if choice.provider not in ("openai", "openai-compatible"):
            raise Unavailable(
                f"the provider {choice.provider!r} has no rerank models; use an OpenAI-compatible server",
                {"provider": choice.provider},
            )
        api_key, base_url = self._endpoint(choice, credentials or Credentials())
        return OpenAICompatibleReranker(choice.model_id, api_key, base_url, self.http())
