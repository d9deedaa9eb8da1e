"""This process's monitoring records: kept in memory as requests finish and log lines are
written, and stored in the shared database in batches by a background beat, so that no
request waits on a write of its own. The beat also says how this process is (its open
requests and WebSockets, for the server-wide count) and prunes what is past the retention.

Several processes may record into one database: each writes its own batches, and every
reader (any process) sees them all once written. A process's own records are written before
it answers a monitoring question (`flush`), so an account sees its latest requests at once;
another process's arrive within one beat. While the database cannot be reached, records wait
in memory, up to MAX_WAITING of each kind (the oldest are dropped beyond that).
"""

import asyncio
import logging
import os
import secrets
import socket
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from tertulia.core.monitoring import instruments
from tertulia.core.monitoring.system import SystemLoad
from tertulia.store.session import Database
from tertulia.store.tables import LogEntry, RequestRecord, ServerProcess, utcnow

# Not captured into the account logs (core.monitoring.log_capture): a warning about writing
# records must not become a record waiting to be written.
log = logging.getLogger("tertulia.monitoring")

MAX_WAITING = 50_000
BATCH = 1_000  # rows per INSERT statement
PRUNE_EVERY = timedelta(minutes=15)
# A process row not renewed for this long (or for three beats, if longer) is a dead process's.
STALE_AFTER = timedelta(seconds=15)
FORGET_PROCESSES_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class FinishedRequest:
    created_at: datetime
    account_id: str | None
    face: str
    method: str
    route: str
    status: int
    duration_ms: float
    request_id: str | None


@dataclass(frozen=True)
class LogLine:
    created_at: datetime
    account_id: str | None
    level: str
    level_number: int
    module: str
    message: str
    request_id: str | None
    details: dict[str, Any] = field(default_factory=dict)


Item = TypeVar("Item", FinishedRequest, LogLine)


class Recorder:
    def __init__(self, database: Database, flush_seconds: float, retention: timedelta) -> None:
        self._database = database
        self._every = flush_seconds
        self.retention = retention
        self._requests: deque[FinishedRequest] = deque(maxlen=MAX_WAITING)
        self._logs: deque[LogLine] = deque(maxlen=MAX_WAITING)
        self._writing = asyncio.Lock()
        self._beat_task: asyncio.Task[None] | None = None
        self._pruned_at: datetime | None = None
        self._failing = False
        self.load = SystemLoad()
        # Live counts of this process, kept by the faces' middleware.
        self.in_flight = 0
        self.websockets = 0
        self.process_id = f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.started_at = utcnow()

    @property
    def stale_after(self) -> timedelta:
        return max(STALE_AFTER, timedelta(seconds=3 * self._every))

    # --- what happens (called on the event loop, or from any thread for log lines) -----------

    def add_request(self, record: FinishedRequest) -> None:
        _append(self._requests, record, "request")

    def add_log(self, line: LogLine) -> None:
        _append(self._logs, line, "log")

    # --- the beat --------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.prune()
        except Exception as error:  # the database may be away at start; the beat tries again
            log.warning("monitoring: could not prune old records at start (%s)", error)
        self._beat_task = asyncio.create_task(self._beat(), name="monitoring beat")

    async def close(self) -> None:
        if self._beat_task is not None:
            self._beat_task.cancel()
            await asyncio.gather(self._beat_task, return_exceptions=True)
        try:
            await self.flush()
            async with self._database.session() as session:
                await session.execute(delete(ServerProcess).where(ServerProcess.id == self.process_id))
                await session.commit()
        except Exception as error:
            log.warning("monitoring: records of this process not written at shutdown (%s)", error)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self.load.sample()
            try:
                await self.flush()
                await self._say_how_we_are()
                if self._pruned_at is None or utcnow() - self._pruned_at >= PRUNE_EVERY:
                    await self.prune()
            except Exception as error:  # the database is away: records wait in memory
                if not self._failing:
                    log.warning("monitoring: records wait in memory, the database failed (%s)", error)
                self._failing = True
                instruments.MONITORING_WRITE_FAILURES.inc()
            else:
                if self._failing:
                    log.info("monitoring: records are written again")
                self._failing = False

    async def flush(self) -> None:
        """Writes every record waiting in memory. While the database is away (or busy) they wait
        for the next try; rows the database refuses as such are dropped, and counted."""
        async with self._writing:
            requests, logs = _take_all(self._requests), _take_all(self._logs)
            if not requests and not logs:
                return
            try:
                async with self._database.session() as session:
                    # Core inserts of the tables: one statement for many rows (the ORM's would
                    # split them by which values are None).
                    for start in range(0, len(requests), BATCH):
                        rows = [asdict(record) for record in requests[start : start + BATCH]]
                        await session.execute(insert(RequestRecord.__table__), rows)
                    for start in range(0, len(logs), BATCH):
                        rows = [asdict(line) for line in logs[start : start + BATCH]]
                        await session.execute(insert(LogEntry.__table__), rows)
                    await session.commit()
            except Exception as error:
                if _rows_at_fault(error):
                    # Trying these rows again would fail again, and hold back every record
                    # noted after them.
                    _count_dropped(len(requests), "request")
                    _count_dropped(len(logs), "log")
                    log.error(
                        "monitoring: %d records could not be stored (%s)", len(requests) + len(logs), error
                    )
                    return
                _put_back(self._requests, requests, "request")
                _put_back(self._logs, logs, "log")
                raise
            except BaseException:  # cancelled mid-write: kept for the next flush (at shutdown)
                _put_back(self._requests, requests, "request")
                _put_back(self._logs, logs, "log")
                raise

    async def _say_how_we_are(self) -> None:
        values = {"seen_at": utcnow(), "in_flight": self.in_flight, "websockets": self.websockets}
        async with self._database.session() as session:
            renewed = await session.execute(
                update(ServerProcess).where(ServerProcess.id == self.process_id).values(**values)
            )
            if not renewed.rowcount:  # type: ignore[attr-defined]
                session.add(
                    ServerProcess(
                        id=self.process_id,
                        host=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=self.started_at,
                        **values,
                    )
                )
            await session.commit()

    async def prune(self) -> None:
        """Removes records past the retention, and the rows of processes long gone."""
        now = utcnow()
        async with self._database.session() as session:
            await session.execute(
                delete(RequestRecord).where(RequestRecord.created_at < now - self.retention)
            )
            await session.execute(delete(LogEntry).where(LogEntry.created_at < now - self.retention))
            await session.execute(
                delete(ServerProcess).where(ServerProcess.seen_at < now - FORGET_PROCESSES_AFTER)
            )
            await session.commit()
        self._pruned_at = now


def _rows_at_fault(error: Exception) -> bool:
    """Whether the rows themselves were refused (a value the database will never take), as
    opposed to the database being away, busy or locked, which passes."""
    if isinstance(error, DataError | IntegrityError | TypeError | ValueError):
        return True
    return isinstance(error, StatementError) and not isinstance(error, DBAPIError)  # binding a value


def _append(queue: "deque[Item]", item: Item, kind: str) -> None:
    if len(queue) == queue.maxlen:
        _count_dropped(1, kind)
    queue.append(item)


def _count_dropped(count: int, kind: str) -> None:
    if count:
        instruments.MONITORING_RECORDS_DROPPED.labels(kind).inc(count)


def _take_all(queue: "deque[Item]") -> list[Item]:
    # popleft is atomic: a record added meanwhile (from another thread) waits for the next flush.
    return [queue.popleft() for _ in range(len(queue))]


def _put_back(queue: "deque[Item]", items: list[Item], kind: str) -> None:
    assert queue.maxlen is not None
    _count_dropped(max(0, len(queue) + len(items) - queue.maxlen), kind)
    queue.extendleft(reversed(items))  # older first again; beyond maxlen the newest go
