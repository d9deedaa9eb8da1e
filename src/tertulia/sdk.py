"""The ChatAgent Python SDK (the `chatagent` package) under Tertulia's name:
`from tertulia.sdk import ChatAgentClient` is `from chatagent import ChatAgentClient`."""

from chatagent import (
    APIConnectionError,
    APITimeoutError,
    AsyncChatAgentClient,
    AsyncMessageStream,
    AuthenticationError,
    ChatAgentClient,
    ChatAgentError,
    ConflictError,
    MessageStream,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)

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
