"""What happens in a conversation, told to whoever watches it live (WebSocket clients):
in-process for one server, through Redis pub/sub for several.

Nothing has to remember to publish: `announce_commits` hooks a database's sessions, so every
message stored and every status set — by the chat engine, a REST call of any face, an operator
taking a conversation over — is told once its transaction has committed, and never when it
rolled back.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from tertulia.store.session import Database
from tertulia.store.tables import Conversation, Message

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
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None

    @classmethod
    def of(cls, message: Message, origin: str | None) -> "MessageAdded":
        return cls(
            conversation_id=message.conversation_id,
            message_id=message.id,
            role=message.role,
            content=message.content,
            message_type=message.message_type,
            created_at=message.created_at.isoformat(),
            account_id=message.account_id,
            meta=dict(message.meta or {}),
            origin=origin,
        )


@dataclass(frozen=True)
class StatusChanged:
    """A conversation's status set to something else (resolved …), a person asked for, or
    a person taking it over (`operator`: their name) or handing it back."""

    conversation_id: str
    status: str
    account_id: str
    origin: str | None = None
    human_requested: bool = False
    operator: str | None = None

    @classmethod
    def of(cls, conversation: Conversation, origin: str | None) -> "StatusChanged":
        meta = conversation.meta or {}
        return cls(
            conversation.id,
            conversation.status,
            conversation.account_id,
            origin,
            human_requested=bool(meta.get("human_requested")),
            operator=(meta.get("operator") or {}).get("name"),
        )


ConversationEvent = MessageAdded | StatusChanged
_KINDS: dict[str, type[MessageAdded] | type[StatusChanged]] = {
    "message": MessageAdded,
    "status": StatusChanged,
}


def encode(event: ConversationEvent) -> str:
    kind = "message" if isinstance(event, MessageAdded) else "status"
    return json.dumps({"kind": kind, **asdict(event)})


def decode(data: bytes | str) -> ConversationEvent:
    """Raises ValueError or TypeError for anything that is not an encoded event."""
    fields = json.loads(data)
    if not isinstance(fields, dict):
        raise ValueError("an event is a JSON object")
    kind = _KINDS.get(fields.pop("kind", None))
    if kind is None:
        raise ValueError("unknown event kind")
    return kind(**fields)


class ConversationEvents(Protocol):
    async def start(self) -> None: ...

    async def publish(self, event: ConversationEvent) -> None:
        """Never raises: the event is told on a best-effort basis once the message is stored."""

    def watch(self, conversation_id: str) -> "asyncio.Queue[ConversationEvent]":
        """A queue that receives the conversation's events from now on, until `unwatch`."""

    def unwatch(self, conversation_id: str, queue: "asyncio.Queue[ConversationEvent]") -> None: ...

    async def close(self) -> None: ...


class InProcessEvents:
    """Watchers of this process only: enough when one process serves every WebSocket."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[ConversationEvent]]] = {}

    async def start(self) -> None:
        return None

    async def publish(self, event: ConversationEvent) -> None:
        self.deliver(event)

    def deliver(self, event: ConversationEvent) -> None:
        for queue in self._watchers.get(event.conversation_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def watch(self, conversation_id: str) -> "asyncio.Queue[ConversationEvent]":
        queue: asyncio.Queue[ConversationEvent] = asyncio.Queue(BACKLOG)
        self._watchers.setdefault(conversation_id, set()).add(queue)
        return queue

    def unwatch(self, conversation_id: str, queue: "asyncio.Queue[ConversationEvent]") -> None:
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

    async def publish(self, event: ConversationEvent) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.publish(CHANNEL_PREFIX + event.conversation_id, encode(event))
        except RedisError as error:
            log.warning("conversation event not published (Redis: %s); told to this process only", error)
            self._local.deliver(event)

    def watch(self, conversation_id: str) -> "asyncio.Queue[ConversationEvent]":
        return self._local.watch(conversation_id)

    def unwatch(self, conversation_id: str, queue: "asyncio.Queue[ConversationEvent]") -> None:
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
            event = decode(data)
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


ORIGIN = "tertulia.origin"  # session.info key: the connection a session's writes answer
_PENDING = "tertulia.pending_events"


def announce_commits(database: Database, events: ConversationEvents) -> None:
    """Tells `events` of every message added and status changed through `database`'s sessions,
    in the order flushed, once the transaction that wrote them has committed."""
    sessions = database.session_class
    tasks: set[asyncio.Task[None]] = set()
    # One commit's events go out after the previous commit's (asyncio's lock is first come,
    # first served), so a watcher hears "handed to a person" before the handoff's messages.
    in_order = asyncio.Lock()

    def collect(session: Session, _context: Any) -> None:
        # The rows are kept, not their values: a row flushed early and changed before the
        # commit is told as committed.
        pending = session.info.setdefault(_PENDING, {})
        for instance in session.new:
            if isinstance(instance, Message):
                pending.setdefault(id(instance), instance)
        for instance in session.dirty:
            if isinstance(instance, Conversation) and _handling_changed(instance):
                pending.setdefault(id(instance), instance)

    def forget(session: Session, *_previous: Any) -> None:
        session.info.pop(_PENDING, None)

    def tell(session: Session) -> None:
        pending = session.info.pop(_PENDING, None)
        if not pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a session used outside the event loop (a script, a thread)
            log.debug("conversation events: no event loop; %d event(s) not told", len(pending))
            return
        origin = session.info.get(ORIGIN)
        told = [_event_of(instance, origin) for instance in pending.values()]
        task = loop.create_task(_publish_in_order(events, told, in_order), name="tertulia-conversation-event")
        tasks.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(tasks.discard)

    event.listen(sessions, "after_flush", collect)
    event.listen(sessions, "after_commit", tell)
    event.listen(sessions, "after_rollback", forget)


# What in a conversation's metadata says who handles it (core.handoff).
HANDLING_KEYS = ("human_requested", "operator")


def _handling_changed(conversation: Conversation) -> bool:
    """Whether the status, a request for a person or a take-over changed (not the title or
    a contact detail)."""
    attrs = inspect(conversation).attrs
    if attrs.status.history.has_changes():
        return True
    history = attrs.meta.history
    if not history.has_changes():
        return False
    before = (history.deleted or [None])[0] or {}
    after = (history.added or [None])[0] or {}
    return any(before.get(key) != after.get(key) for key in HANDLING_KEYS)


def _event_of(instance: Message | Conversation, origin: str | None) -> ConversationEvent:
    if isinstance(instance, Message):
        return MessageAdded.of(instance, origin)
    return StatusChanged.of(instance, origin)


async def _publish_in_order(
    events: ConversationEvents, pending: list[ConversationEvent], in_order: asyncio.Lock
) -> None:
    async with in_order:
        for item in pending:
            await events.publish(item)
