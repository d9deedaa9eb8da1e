"""Chroma as a knowledge base's vector store: a persistent local client or a Chroma server.

A base with `vector_store_type: "chroma"` keeps its vectors in a Chroma collection of its own
(cosine space, ids = chunk ids) and its nearest-neighbour search runs there. The database
stays the source of truth for what is live: Chroma's answers are joined back to the chunks
of each document's live generation (store.vectors), so a vector written for a replacement
that never committed, or one whose removal failed, is never returned.

`chromadb` is an optional dependency (`pip install 'tertulia[chroma]'`); a server without it
refuses to create a Chroma base with a clear error. Its client is synchronous: every call
runs in a worker thread, under a time limit.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio

from tertulia.store.index import Hit

log = logging.getLogger(__name__)

COLLECTION_PREFIX = "tertulia-"
T = TypeVar("T")


@dataclass(frozen=True)
class ChromaRow:
    chunk_id: int
    vector: Sequence[float]
    document_id: str
    generation: int
    metadata: dict[str, Any]


class ChromaUnavailable(Exception):
    """Chroma could not be reached or failed; the message says which and where."""


def installed() -> bool:
    try:
        import chromadb  # noqa: F401
    except ImportError:
        return False
    return True


def collection_name(base_id: str) -> str:
    return COLLECTION_PREFIX + base_id


def _scalar_metadata(row: ChromaRow) -> dict[str, str | int | float | bool]:
    """What Chroma can hold of a chunk's metadata (it takes scalars only), and what we filter on."""
    kept: dict[str, str | int | float | bool] = {
        key: value
        for key, value in row.metadata.items()
        if isinstance(value, str | int | float | bool) and key and not key.startswith("chroma:")
    }
    kept["document_id"] = row.document_id
    kept["generation"] = row.generation
    return kept


def where_clause(filters: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a metadata filter Chroma can apply itself: text values, one or a list of them.

    Anything else is checked afterwards against the chunk's full metadata in the database.
    """
    clauses: list[dict[str, Any]] = []
    for key, wanted in filters.items():
        if isinstance(wanted, str):
            clauses.append({key: {"$eq": wanted}})
        elif isinstance(wanted, list) and wanted and all(isinstance(item, str) for item in wanted):
            clauses.append({key: {"$in": wanted}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaStore:
    """One Chroma client per process, opened on first use."""

    def __init__(
        self, *, path: Path | None, url: str | None, token: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self._path = path
        self._url = url
        self._token = token
        self._timeout = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def local_and_present(self) -> bool:
        return self._url is None and self._path is not None and self._path.exists()

    @property
    def where(self) -> str:
        return self._url or str(self._path)

    def _open(self) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            settings = ChromaSettings(anonymized_telemetry=False)
            if self._url:
                parts = urlsplit(self._url)
                secure = parts.scheme == "https"
                self._client = chromadb.HttpClient(
                    host=parts.hostname or "localhost",
                    port=parts.port or (443 if secure else 8000),
                    ssl=secure,
                    headers={"x-chroma-token": self._token} if self._token else None,
                    settings=settings,
                )
            else:
                assert self._path is not None
                self._path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(self._path), settings=settings)
            return self._client

    async def _call(self, what: str, work: Callable[[Any], T]) -> T:
        """`work(client)` in a worker thread, within the time limit."""

        def run() -> T:
            return work(self._open())

        try:
            with anyio.fail_after(self._timeout):
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except TimeoutError as error:
            raise ChromaUnavailable(
                f"the Chroma vector store at {self.where} did not answer in time"
            ) from error
        except Exception as error:
            log.warning("chroma %s failed: %r", what, error)
            raise ChromaUnavailable(f"the Chroma vector store at {self.where} failed to {what}") from error

    async def check(self) -> None:
        """Raises ChromaUnavailable unless Chroma can be reached."""
        await self._call("start", lambda client: client.heartbeat())

    async def write(self, base_id: str, rows: Sequence[ChromaRow]) -> None:
        if not rows:
            return

        def work(client: Any) -> None:
            collection = _collection(client, base_id)
            for start in range(0, len(rows), 1000):
                batch = rows[start : start + 1000]
                collection.upsert(
                    ids=[str(row.chunk_id) for row in batch],
                    embeddings=[list(map(float, row.vector)) for row in batch],
                    metadatas=[_scalar_metadata(row) for row in batch],
                )

        await self._call("store vectors", work)

    async def keep_only(self, base_id: str, document_id: str, generation: int | None) -> None:
        """Removes a document's vectors but those of `generation` (all of them for None)."""
        where: dict[str, Any] = {"document_id": {"$eq": document_id}}
        if generation is not None:
            where = {"$and": [where, {"generation": {"$ne": generation}}]}

        def work(client: Any) -> None:
            try:
                collection = client.get_collection(collection_name(base_id))
            except Exception as error:
                if _is_not_found(error):
                    return
                raise
            collection.delete(where=where)

        await self._call("remove vectors", work)

    async def drop(self, base_id: str) -> None:
        def work(client: Any) -> None:
            try:
                client.delete_collection(collection_name(base_id))
            except Exception as error:
                if not _is_not_found(error):
                    raise

        await self._call("remove a collection", work)

    async def search(
        self, base_id: str, query: Sequence[float], limit: int, filters: dict[str, Any] | None
    ) -> list[Hit]:
        """Up to `limit` nearest vectors of the base, with their cosine similarity."""
        where = where_clause(filters or {})

        def work(client: Any) -> list[Hit]:
            try:
                collection = client.get_collection(collection_name(base_id))
            except Exception as error:
                if _is_not_found(error):
                    return []  # nothing ingested yet
                raise
            try:
                found = collection.query(
                    query_embeddings=[list(map(float, query))],
                    n_results=limit,
                    where=where,
                    include=["distances"],
                )
            except Exception as error:
                if "dimension" in str(error).lower():
                    return []  # a query embedded by another model: nothing here is comparable
                raise
            ids, distances = found["ids"][0], found["distances"][0]
            return [
                Hit(int(chunk_id), 1.0 - float(distance))
                for chunk_id, distance in zip(ids, distances, strict=True)
            ]

        return await self._call("search", work)

    async def collections(self) -> list[str]:
        """The base ids of every collection Tertulia made here."""

        def work(client: Any) -> list[str]:
            names = [getattr(item, "name", item) for item in client.list_collections()]
            return [name[len(COLLECTION_PREFIX) :] for name in names if name.startswith(COLLECTION_PREFIX)]

        return await self._call("list collections", work)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                close_client(self._client)
            self._client = None


def close_client(client: Any) -> None:
    """Closes a Chroma client, and the connections of its HTTP clients (its own and its admin
    client's), which `close()` leaves open."""
    client.close()
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if session is not None:
            session.close()


def _collection(client: Any, base_id: str) -> Any:
    return client.get_or_create_collection(
        collection_name(base_id), configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )


def _is_not_found(error: BaseException) -> bool:
    return type(error).__name__ == "NotFoundError" or "does not exist" in str(error)
