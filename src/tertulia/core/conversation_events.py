"""What happens in a conversation, told to whoever watches it live (WebSocket clients):
in-process for one server, through Redis pub/sub for several."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tertulia.store.tables import Message

log = logging.getLogger("tertulia.conversation_events")

# A watcher this far behind loses the oldest events rather than holding the server's memory.
BACKLOG = 256


@dataclass(frozen=True)
class MessageAdded:
    """A message stored in a conversation. `origin` names the connection that asked for it,
    which learns of it from its own reply stream and so is not told again."""

    conversation_id: str
    message_id: str
    role: str
    content: str
    message_type: str
    created_at: str  # ISO 8601, UTC
    account_id: str
    bot_id: str
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None

    @classmethod
    def of(cls, message: Message, bot_id: str, origin: str | None) -> "MessageAdded":
        return cls(
            conversation_id=message.conversation_id,
            message_id=message.id,
            role=message.role,
            content=message.content,
            message_type=message.message_type,
            created_at=message.created_at.isoformat(),
            account_id=message.account_id,
            bot_id=bot_id,
            meta=dict(message.meta or {}),
            origin=origin,
        )


class ConversationEvents(Protocol):
    async def start(self) -> None: ...

    async def publish(self, event: MessageAdded) -> None:
        """Never raises: the event is told on a best-effort basis once the message is stored."""

    def watch(self, conversation_id: str) -> "asyncio.Queue[MessageAdded]":
        """A queue that receives the conversation's events from now on, until `unwatch`."""

    def unwatch(self, conversation_id: str, queue: "asyncio.Queue[MessageAdded]") -> None: ...

    async def close(self) -> None: ...


class InProcessEvents:
    """Watchers of this process only: enough when one process serves every WebSocket."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[MessageAdded]]] = {}

    async def start(self) -> None:
        return None

    async def publish(self, event: MessageAdded) -> None:
        self.deliver(event)

    def deliver(self, event: MessageAdded) -> None:
        for queue in self._watchers.get(event.conversation_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def watch(self, conversation_id: str) -> "asyncio.Queue[MessageAdded]":
        queue: asyncio.Queue[MessageAdded] = asyncio.Queue(BACKLOG)
        self._watchers.setdefault(conversation_id, set()).add(queue)
        return queue

    def unwatch(self, conversation_id: str, queue: "asyncio.Queue[MessageAdded]") -> None:
        watchers = self._watchers.get(conversation_id)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[conversation_id]

    async def close(self) -> None:
        self._watchers.clear()


CHANNEL_PREFIX = "tertulia:conversation:"


class RedisEvents:
    """Events published on one Redis channel per conversation; each process listens to all of
    them on a single connection and hands each to its own watchers. An event published while
    Redis is away reaches this process's watchers only; the listener reconnects by itself."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError as error:  # the optional extra is missing
            raise RuntimeError("TERTULIA_REDIS_URL needs redis-py: pip install 'tertulia[scale]'") from error
        from tertulia.core.ratelimit import redis_options

        self._redis = Redis.from_url(url, **redis_options(timeout_seconds))
        self._timeout = timeout_seconds
        self._local = InProcessEvents()
        self._listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="tertulia-conversation-events")
        # Wait a moment for the subscription, so a socket opened right after start hears
        # everything; a Redis that is away does not hold the server back.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=self._timeout * 2)

    async def publish(self, event: MessageAdded) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.publish(CHANNEL_PREFIX + event.conversation_id, json.dumps(asdict(event)))
        except RedisError as error:
            log.warning("conversation event not published (Redis: %s); told to this process only", error)
            self._local.deliver(event)

    def watch(self, conversation_id: str) -> "asyncio.Queue[MessageAdded]":
        return self._local.watch(conversation_id)

    def unwatch(self, conversation_id: str, queue: "asyncio.Queue[MessageAdded]") -> None:
        self._local.unwatch(conversation_id, queue)

    async def _listen(self) -> None:
        from redis.exceptions import RedisError

        pause = 0.1
        while True:
            try:
                async with self._subscribed() as messages:
                    self._listening.set()
                    pause = 0.1
                    async for data in messages:
                        self._deliver(data)
            except (RedisError, OSError) as error:
                self._listening.clear()
                log.warning("conversation events: Redis unreachable (%s); retrying in %.1fs", error, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    @asynccontextmanager
    async def _subscribed(self) -> AsyncIterator[AsyncIterator[bytes]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(CHANNEL_PREFIX + "*")

            async def messages() -> AsyncIterator[bytes]:
                while True:
                    message = await pubsub.get_message(timeout=self._timeout)
                    if message is None:
                        # Silence: make sure the connection is still there (a dead one raises).
                        await pubsub.ping()
                        continue
                    if message.get("type") == "pmessage":
                        yield message["data"]

            yield messages()
        finally:
            with suppress(Exception):
                await pubsub.aclose()

    def _deliver(self, data: bytes) -> None:
        try:
            event = MessageAdded(**json.loads(data))
        except (ValueError, TypeError) as error:
            log.warning("conversation events: ignoring a malformed event (%s)", error)
            return
        self._local.deliver(event)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener
        await self._local.close()
        await self._redis.aclose()


def conversation_events(redis_url: str | None, timeout_seconds: float) -> ConversationEvents:
    return RedisEvents(redis_url, timeout_seconds) if redis_url else InProcessEvents()
