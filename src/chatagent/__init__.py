"""The ChatAgent Python SDK: `ChatAgentClient` and `AsyncChatAgentClient` for the ChatAgent API
(auth, bots, conversations with streamed replies, knowledge bases, multimodal, plugins,
monitoring), raising a typed ChatAgentError for every failure."""

from chatagent.async_client import AsyncChatAgentClient
from chatagent.client import ChatAgentClient
from chatagent.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ChatAgentError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from chatagent.streaming import AsyncMessageStream, MessageStream

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncChatAgentClient",
    "AsyncMessageStream",
    "AuthenticationError",
    "ChatAgentClient",
    "ChatAgentError",
    "ConflictError",
    "MessageStream",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
]
