"""A bot's reply as it is written, over the document's WebSocket
(`/ws/conversations/{id}?token=…`): one socket per message, read until the reply is complete.

The client sends {"type": "user_message", "content": …}; the server answers with
`stream_chunk` frames (the pieces), then `stream_complete` (the whole reply and its ids); a
server that does not stream answers with one `bot_response`, and a failure with `error`.
Other frames (heartbeats, pongs, other people's messages) are not part of the reply.
"""

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection as AsyncSocket
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection as SyncSocket
from websockets.sync.client import connect as connect_sync

from chatagent.calls import JSON
from chatagent.errors import (
    APIConnectionError,
    APITimeoutError,
    ChatAgentError,
    connection_error,
    error_from_frame,
    error_from_response,
)


def socket_url(base_url: str, conversation_id: str, token: str) -> str:
    """http(s)://host/api/v1 → ws(s)://host/api/v1/ws/conversations/{id}?token=…"""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = f"{parts.path.rstrip('/')}/ws/conversations/{quote(conversation_id, safe='')}"
    return urlunsplit((scheme, parts.netloc, path, f"token={quote(token, safe='')}", ""))


def user_message(content: str, message_type: str, metadata: dict[str, Any] | None) -> str:
    frame: JSON = {"type": "user_message", "content": content, "message_type": message_type}
    if metadata:
        frame["metadata"] = metadata
    return json.dumps(frame, ensure_ascii=False)


class ReplyReader:
    """Reads frames into the reply's pieces; `reply` is set once the reply is complete."""

    def __init__(self) -> None:
        self.reply: JSON | None = None

    def read(self, data: str | bytes) -> str | None:
        """The piece of text a frame carries, if any; raises the typed error of an error frame."""
        try:
            frame = json.loads(data)
        except ValueError:
            return None
        if not isinstance(frame, dict):
            return None
        kind = frame.get("type")
        if kind == "stream_chunk":
            return str(frame.get("content") or "") or None
        if kind == "stream_complete":
            self.reply = frame
        elif kind == "bot_response":  # a server that answered in one piece
            self.reply = {**frame, "full_content": frame.get("content", "")}
            return str(frame.get("content") or "") or None
        elif kind == "error":
            raise error_from_frame(frame)
        return None


def closed_early(closed: ConnectionClosed) -> ChatAgentError:
    """The server closed the socket before the reply was complete; 1008 is its refusal."""
    received = closed.rcvd
    code, reason = (received.code, received.reason) if received is not None else (None, "")
    message = f"the server closed the WebSocket before the reply was complete (code {code}, {reason!r})"
    if code == 1008:
        return ChatAgentError(reason or message, code="POLICY_VIOLATION", details={"close_code": code})
    return APIConnectionError(message, code="CONNECTION_CLOSED", details={"close_code": code})


def refused_upgrade(error: InvalidStatus, url: str) -> ChatAgentError:
    """An HTTP answer instead of a WebSocket (a proxy, a wrong base URL)."""
    answer = error.response
    response = httpx.Response(
        answer.status_code, headers=list(answer.headers.raw_items()), content=bytes(answer.body or b"")
    )
    response.read()
    refused = error_from_response(response)
    if refused.code == f"HTTP_{answer.status_code}":  # not ChatAgent's envelope: say where
        said = refused.message
        refused.message = f"{url} answered HTTP {answer.status_code} instead of a WebSocket: {said}"
        refused.args = (refused.message,)
    return refused


def _opening_error(error: Exception, url: str) -> ChatAgentError:
    if isinstance(error, InvalidStatus):
        return refused_upgrade(error, url)
    if isinstance(error, InvalidURI):
        return ChatAgentError(f"not a WebSocket URL: {url}", code="INVALID_URL")
    if isinstance(error, OSError):
        return connection_error(error, url)
    return APIConnectionError(f"could not open a WebSocket to {url}: {error}", code="CONNECTION_ERROR")


def _public(url: str) -> str:
    """The socket URL without its token, for messages."""
    return url.split("?", 1)[0]


class MessageStream:
    """The reply to one message, piece by piece: iterate it for the text as it arrives.
    Once it is complete, `reply` holds the server's `stream_complete` frame (`message_id`,
    `full_content`, `usage`, `sources`) and the socket is closed. Closing it early (leaving
    a `with` block, `close()`) stops the bot; the server keeps the partial reply."""

    def __init__(self, socket: SyncSocket, read_timeout: float | None) -> None:
        self._socket = socket
        self._read_timeout = read_timeout
        self._reader = ReplyReader()
        self._first: str | None = None
        self._pieces = self._read()

    @classmethod
    def open(cls, url: str, frame: str, timeouts: httpx.Timeout) -> "MessageStream":
        """Sends the message and waits for the reply to begin, so that a refusal (a bad token,
        a conversation not found, a model not available) is raised here, not while iterating."""
        try:
            socket = connect_sync(url, open_timeout=timeouts.connect, close_timeout=timeouts.connect)
        except (OSError, WebSocketException) as error:
            raise _opening_error(error, _public(url)) from error
        stream = cls(socket, timeouts.read)
        try:
            try:
                socket.send(frame)
            except ConnectionClosed:
                pass  # refused on arrival: the error frame waiting to be read says why
            stream._first = stream._next_piece()
        except BaseException:
            socket.close()
            raise
        return stream

    @property
    def reply(self) -> JSON | None:
        return self._reader.reply

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def _next_piece(self) -> str | None:
        """The next piece of text, or None once the reply is complete."""
        while self._reader.reply is None:
            try:
                data = self._socket.recv(timeout=self._read_timeout)
            except TimeoutError:
                raise _silent(self._read_timeout) from None
            except ConnectionClosed as closed:
                raise closed_early(closed) from closed
            piece = self._reader.read(data)
            if piece:
                return piece
        return None

    def _read(self) -> Generator[str]:
        try:
            piece, self._first = self._first, None
            while piece is not None:
                yield piece
                piece = self._next_piece()
        finally:
            self._socket.close()

    def text(self) -> str:
        """Reads the rest of the reply and returns all of it."""
        for _ in self:
            pass
        return str(self.reply["full_content"]) if self.reply else ""

    def close(self) -> None:
        self._pieces.close()
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class AsyncMessageStream:
    """MessageStream for AsyncChatAgentClient: `async for piece in stream`, `await aclose()`."""

    def __init__(self, socket: AsyncSocket, read_timeout: float | None) -> None:
        self._socket = socket
        self._read_timeout = read_timeout
        self._reader = ReplyReader()
        self._first: str | None = None
        self._pieces = self._read()

    @classmethod
    async def open(cls, url: str, frame: str, timeouts: httpx.Timeout) -> "AsyncMessageStream":
        """Sends the message and waits for the reply to begin (see MessageStream.open)."""
        try:
            socket = await connect_async(url, open_timeout=timeouts.connect, close_timeout=timeouts.connect)
        except (OSError, TimeoutError, WebSocketException) as error:
            raise _opening_error(error, _public(url)) from error
        stream = cls(socket, timeouts.read)
        try:
            try:
                await socket.send(frame)
            except ConnectionClosed:
                pass  # refused on arrival: the error frame waiting to be read says why
            stream._first = await stream._next_piece()
        except BaseException:
            await socket.close()
            raise
        return stream

    @property
    def reply(self) -> JSON | None:
        return self._reader.reply

    def __aiter__(self) -> AsyncIterator[str]:
        return self._pieces

    async def _next_piece(self) -> str | None:
        while self._reader.reply is None:
            try:
                data = await asyncio.wait_for(self._socket.recv(), self._read_timeout)
            except TimeoutError:
                raise _silent(self._read_timeout) from None
            except ConnectionClosed as closed:
                raise closed_early(closed) from closed
            piece = self._reader.read(data)
            if piece:
                return piece
        return None

    async def _read(self) -> AsyncGenerator[str]:
        try:
            piece, self._first = self._first, None
            while piece is not None:
                yield piece
                piece = await self._next_piece()
        finally:
            await self._socket.close()

    async def text(self) -> str:
        """Reads the rest of the reply and returns all of it."""
        async for _ in self:
            pass
        return str(self.reply["full_content"]) if self.reply else ""

    async def aclose(self) -> None:
        await self._pieces.aclose()
        await self._socket.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()


def _silent(seconds: float | None) -> APITimeoutError:
    return APITimeoutError(f"the server sent nothing of the reply for {seconds} seconds", code="TIMEOUT")
