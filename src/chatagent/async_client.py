"""AsyncChatAgentClient: ChatAgentClient's surface over httpx.AsyncClient; every method is
awaited, and a streamed reply is read with `async for`."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
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
from chatagent.streaming import AsyncMessageStream, socket_url, user_message

Pending = Awaitable[Any]


class AsyncChatAgentClient:
    """ChatAgentClient for asyncio: the same arguments, resources and methods, awaited.

    `async with AsyncChatAgentClient(...) as client:` closes its connections on the way out;
    otherwise call `await client.aclose()`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        access_token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._credentials = Credentials(base_url, access_token, username, password, timeout)
        self._http = http_client or httpx.AsyncClient(timeout=self._credentials.timeout)
        self._owns_http = http_client is None
        # Concurrent first requests of a client built from a username and password log in once.
        self._logging_in = asyncio.Lock()
        self.auth: Auth[Pending] = Auth(self._send)
        self.bots: Bots[Pending] = Bots(self._send)
        self.conversations = AsyncConversations(self._send, self)
        self.knowledge = AsyncKnowledgeBases(self._send)
        self.multimodal: Multimodal[Pending] = Multimodal(self._send)
        self.plugins: Plugins[Pending] = Plugins(self._send)
        self.monitoring: Monitoring[Pending] = Monitoring(self._send)

    @property
    def base_url(self) -> str:
        return self._credentials.base_url

    @property
    def access_token(self) -> str | None:
        return self._credentials.access_token

    async def _send(self, call: Call) -> Any:
        # A token this client has not just been given may have expired: renewed once on a 401.
        renewable = call.authenticated and self._credentials.can_log_in()
        if renewable and self._credentials.must_log_in():
            await self._log_in(stale=None)
            renewable = False
        sent_with = self._credentials.access_token
        response = await self._request(call)
        if response.status_code == 401 and renewable:
            await self._log_in(stale=sent_with)
            response = await self._request(call)
        result = read_reply(response)
        if call.keeps_token:
            self._credentials.keep_token(result)
        return result

    async def _request(self, call: Call) -> httpx.Response:
        url = self._credentials.url(call.path)
        try:
            return await self._http.request(
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

    async def _log_in(self, stale: str | None) -> None:
        """Logs in unless another task already replaced the `stale` token while this one waited."""
        async with self._logging_in:
            if self._credentials.access_token != stale:
                return
            username, password = self._credentials.login_pair()
            await self.auth.login(username, password)

    async def _socket_token(self) -> str:
        if self._credentials.must_log_in():
            await self._log_in(stale=None)
        return self._credentials.socket_token()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()


class AsyncConversations(Conversations[Pending]):
    def __init__(self, send: Callable[[Call], Pending], client: AsyncChatAgentClient) -> None:
        super().__init__(send)
        self._client = client

    @overload
    async def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
        stream: Literal[False] = False,
    ) -> JSON: ...

    @overload
    async def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
        stream: Literal[True],
    ) -> AsyncMessageStream: ...

    async def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> JSON | AsyncMessageStream:
        """ChatAgentClient.conversations.send_message, awaited."""
        if stream:
            return await self.stream_message(
                conversation_id, content, message_type=message_type, metadata=metadata
            )
        result: JSON = await self._post_message(conversation_id, content, message_type, metadata)
        return result

    async def stream_message(
        self,
        conversation_id: str,
        content: str,
        *,
        message_type: str = "text",
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncMessageStream:
        """ChatAgentClient.conversations.stream_message, awaited: `async for piece in stream`."""
        frame = user_message(content, message_type, dict(metadata) if metadata else None)
        client = self._client
        credentials = client._credentials
        token = await client._socket_token()
        try:
            return await AsyncMessageStream.open(
                socket_url(client.base_url, conversation_id, token), frame, credentials.timeout
            )
        except AuthenticationError:
            if not credentials.can_log_in():
                raise
            await client._log_in(stale=token)  # refused before the message was read: nothing stored
            return await AsyncMessageStream.open(
                socket_url(client.base_url, conversation_id, await client._socket_token()),
                frame,
                credentials.timeout,
            )


class AsyncKnowledgeBases(KnowledgeBases[Pending]):
    async def wait_for_job(self, job_id: str, *, max_wait: float = 300.0) -> JSON:
        """ChatAgentClient.knowledge.wait_for_job, awaited."""
        deadline = time.monotonic() + max_wait
        pause = 0.05
        while True:
            job: JSON = await self.get_job(job_id)
            if job.get("status") in ("done", "failed"):
                return job
            if time.monotonic() + pause > deadline:
                raise APITimeoutError(
                    f"job {job_id} was still {job.get('status')} after {max_wait} seconds",
                    code="TIMEOUT",
                    details={"job": job},
                )
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 1.0)
