"""Finds the model that serves a task: the bot's own choice, else the server's default."""

from tertulia.core.catalog import ModelChoice
from tertulia.core.errors import Unavailable
from tertulia.providers.base import ChatModel
from tertulia.providers.local_llm import local_chat_model
from tertulia.settings import Settings


class ModelRegistry:
    """One per process; model instances are created once and shared by every request."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def default_chat(self) -> ModelChoice:
        return ModelChoice(self._settings.default_chat_provider, self._settings.default_chat_model, "chat")

    def chat_model(self, choice: ModelChoice | None) -> ChatModel:
        choice = choice or self.default_chat
        if choice.provider == "local":
            return local_chat_model(
                choice.model_id,
                self._settings.model_cache_dir,
                self._settings.llm_threads,
                self._settings.llm_context_tokens,
            )
        raise Unavailable(
            f"the model provider {choice.provider!r} is not configured on this server",
            {"provider": choice.provider, "model": choice.model_id},
        )
