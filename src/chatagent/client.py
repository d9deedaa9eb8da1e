"""ChatAgentClient: the ChatAgent API over httpx.Client, and its WebSocket for streamed replies."""

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Self, overload

import httpx

from chatagent.calls import JSON, Call, read_reply
from chatagent.credentials import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Credentials
from chatagent.errors import APITimeoutError, AuthenticationError, connection_error
from chatagent.resources import (
    Auth,
    Bots,
    Conversations,
    KnowledgeBases,
    Monitoring,
    Multimodal,
    Plugins,
)
from chatagent.streaming import MessageStream, socket_url, user_message


class ChatAgentClient:
    """A client of a ChatAgent server (`base_url` ends with /api/v1).

    Signed in with an access token or an API key (`access_token`), or with `username` and
    `password`: the client then logs in when first needed, and again when the token expires.
    Every method returns the server's JSON; a failure raises a ChatAgentError subclass.
    `timeout` (seconds, or an httpx.Timeout) bounds connecting and each wait for the server,
    a reply from the model included. `http_client` replaces the client's own httpx.Client
    (for proxies, certificates, a custom transport); the caller then closes it.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        access_token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._credentials = Credentials(base_url, access_token, username, password, timeout)
        self._http = http_client or httpx.Client(timeout=self._credentials.timeout)
        self._owns_http = http_client is None
        self.auth: Auth[Any] = Auth(self._send)
        self.bots: Bots[Any] = Bots(self._send)
        self.conversations = SyncConversations(self._send, self)
        self.knowledge = SyncKnowledgeBases(self._send)
        self.multimodal: Multimodal[Any] = Multimodal(self._send)
        self.plugins: Plugins[Any] = Plugins(self._send)
        self.monitoring: Monitoring[Any] = Monitoring(self._send)

    @property
    def base_url(self) -> str:
        return self._credentials.base_url

    @property
    def access_token(self) -> str | None:
        return self._credentials.access_token

    def _send(self, call: Call) -> Any:
        # A token this client has not just been given may have expired: renewed once on a 401.
        renewable = call.authenticated and self._credentials.can_log_in()
        if renewable and self._credentials.must_log_in():
            self._log_in()
            renewable = False
        response = self._request(call)
        if response.status_code == 401 and renewable:
            self._log_in()
            response = self._request(call)
        result = read_reply(response)
        if call.keeps_token:
            self._credentials.keep_token(result)
        return result

    def _request(self, call: Call) -> httpx.Response:
        url = self._credentials.url(call.path)
        try:
            return self._http.request(
                call.method,
                url,
                params=call.params,
                json=call.json,
                data=call.data,
                files=call.files,
                headers=self._credentials.headers(call),
            )
        except httpx.RequestError as error:
            raise connection_error(error, url) from error

    def _log_in(self) -> None:
        username, password = self._credentials.login_pair()
        self.auth.login(username, password)

    def _socket_token(self) -> str:
        if self._credentials.must_log_in():
            self._log_in()
        return self._credentials.socket_token()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class SyncConversations(Conversations[Any]):
    def __init__(self, send: Callable[[Call], Any], client: ChatAgentClient) -> None:
        super().__init__(send)
        self._client = client

    @overload
    def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
        stream: Literal[False] = False,
    ) -> JSON: ...

    @overload
    def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
        stream: Literal[True],
    ) -> MessageStream: ...

    def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> JSON | MessageStream:
        """Sends a message and returns `{"user_message", "bot_response"}` once the bot has
        answered; with `stream=True`, the reply's pieces as they are written (stream_message).
        A send that timed out may still be answered and stored by the server: look at
        list_messages before sending it again."""
        if stream:
            return self.stream_message(conversation_id, content, message_type=message_type, metadata=metadata)
        result: JSON = self._post_message(conversation_id, content, message_type, metadata)
        return result

    def stream_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
    ) -> MessageStream:
        """Sends a message over the conversation's WebSocket and returns once the reply has
        begun: iterate the stream for its pieces (`for piece in stream: print(piece, end="")`).
        Both messages are stored, as with send_message."""
        frame = user_message(content, message_type, dict(metadata) if metadata else None)
        client = self._client
        credentials = client._credentials
        try:
            return MessageStream.open(
                socket_url(client.base_url, conversation_id, client._socket_token()),
                frame,
                credentials.timeout,
            )
        except AuthenticationError:
            if not credentials.can_log_in():
                raise
            client._log_in()  # refused before the message was read: nothing was stored
            return MessageStream.open(
                socket_url(client.base_url, conversation_id, client._socket_token()),
                frame,
                credentials.timeout,
            )


class SyncKnowledgeBases(KnowledgeBases[Any]):
    def wait_for_job(self, job_id: str, *, max_wait: float = 300.0) -> JSON:
        """Polls an ingestion job until it is done or failed (backing off, so that polling stays
        well within the account's rate limit) and returns it. A failed job is returned, not
        raised: its `error` says why."""
        deadline = time.monotonic() + max_wait
        pause = 0.05
        while True:
            job: JSON = self.get_job(job_id)
            if job.get("status") in ("done", "failed"):
                return job
            if time.monotonic() + pause > deadline:
                raise APITimeoutError(
                    f"job {job_id} was still {job.get('status')} after {max_wait} seconds",
                    code="TIMEOUT",
                    details={"job": job},
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
