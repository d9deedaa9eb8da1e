"""Scale-out figures side by side: vector search, ingest on 1 vs 2 workers, streams through nginx.

    PYTHONPATH=src:. .venv/bin/python bench/scale.py [--chunks 100000] [--queries 200] [--docs 24]
        [--streams 400] [--concurrency 100] [--skip-retrieval] [--skip-ingest] [--skip-streams] [--quick]

1. Retrieval: one knowledge base of --chunks synthetic 384-dimensional vectors (the local
   embedder's size; clustered, so that neighbours are as close as related passages are),
   written in bulk (executemany on SQLite, COPY on PostgreSQL: not the ingestion pipeline)
   to a SQLite file and to a PostgreSQL 16 with pgvector started here from the `pgserver`
   package. Each query vector is searched, in turn, three ways:
     bare       asyncpg alone, ORDER BY embedding <=> query LIMIT k on Tertulia's own
                `chunk_vectors` table and HNSW index, with the same hnsw.ef_search (the baseline);
     pgvector   Tertulia's VectorIndex.search on that PostgreSQL, a session per query, as
                the server runs it (the base and live-generation joins, SQLAlchemy);
     sqlite     Tertulia's VectorIndex.search on the SQLite file: numpy over the base's
                matrix, loaded once per process (the load is timed apart).
   k is what a search with top_k=5 asks the vector leg for (20). The embedding of the
   question is left out: it is the same for every store. Recall is against the exact
   answer (numpy's), since HNSW is approximate.
2. Ingest: the same documents (XQuAD paragraphs) through the API of a `tertulia serve` with
   TERTULIA_JOBS=celery, run by 1 and then 2 `tertulia worker` processes (one job at a time
   each) on a Redis broker (a database index of its own, flushed) and the PostgreSQL above.
   Documents/s and chunks/s from the first upload to the last document ready; by default
   the runs alternate 1, 2, 1, 2 workers, since a shared machine drifts.
3. Streams: streamed chats through the OpenAI-compatible face (POST /v1/chat/completions,
   stream=true, with a bot whose model "gpt-4o" answers through the OpenAI stand-in of
   tests/providers/standins.py, run as a process of its own by bench/standin_model.py:
   --tokens pieces, --token-pause seconds apart), --concurrency at a time, --streams per run,
   three ways, each round starting from another:
     direct     one `tertulia serve` process, asked directly (the baseline);
     nginx-1    the same process behind nginx (deploy/nginx.conf): nginx's own cost;
     nginx-2    that process and a second one behind nginx.
   The processes and nginx are started by the scale tests' harness (tests/scale/topology.py)
   on the PostgreSQL above and Redis (--redis-url, flushed), which every process shares for
   the rate limits (raised far out of the way). Streams/s from the first request to the last
   stream ended; time to first token from sending to the first piece of text. The bench's
   client, the stand-in, nginx, PostgreSQL and Redis share the machine's cores with Tertulia.

Latency is measured side by side in one run; the ratios are the figures to compare across
machines. Nothing here is asserted.
"""

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import redis
import standin_model
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import bindparam, insert, text
from sqlalchemy.engine import make_url
from tertulia_server import Server, free_port
from tests.providers import standins
from tests.scale.topology import REPOSITORY, SOURCE, ApiProcess, Nginx, process_env

import tertulia
from tertulia.core.knowledge.vectors import VectorIndex
from tertulia.settings import Settings
from tertulia.store import pgvector
from tertulia.store.migrate import migrate
from tertulia.store.session import Database
from tertulia.store.tables import Account, Chunk, Document, KnowledgeBase

DIMENSIONS = 384
CHUNKS_PER_DOCUMENT = 100
BATCH = 5000
XQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata" / "xquad" / "beir_en"
console = Console(stderr=True)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")  # every attempt failed: the report says how
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- PostgreSQL from pgserver -----------------------------------------------------------


class PostgresServer:
    """A PostgreSQL 16 with pgvector in a temporary folder, as tests/conftest.py starts it."""

    def __init__(self) -> None:
        with warnings.catch_warnings():  # platformdirs warns that a container has no XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            import pgserver

            self.folder = tempfile.mkdtemp(prefix="tertulia-bench-pgserver-")
            self._server = pgserver.get_server(self.folder, cleanup_mode="delete")
        self.socket_folder = make_url(self._server.get_uri()).query["host"]

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_folder}"

    async def create_database(self, name: str) -> str:
        connection = await asyncpg.connect(host=self.socket_folder, user="postgres", database="postgres")
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return self.url(name)

    async def connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(host=self.socket_folder, user="postgres", database=database)

    def stop(self) -> None:
        self._server.cleanup()


# --- 1. retrieval -------------------------------------------------------------------------


def synthetic_vectors(count: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in clusters of about a hundred (cosine ≈ 0.85 within one, like related
    passages), and queries near a random chunk each."""
    rng = np.random.default_rng(seed)
    clusters = max(1, count // 100)
    centres = rng.standard_normal((clusters, DIMENSIONS)).astype("<f4")
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((count, DIMENSIONS)).astype("<f4") * (0.42 / np.sqrt(DIMENSIONS))
    vectors = centres[rng.integers(0, clusters, count)] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    near = vectors[rng.integers(0, count, queries)]
    asked = near + rng.standard_normal((queries, DIMENSIONS)).astype("<f4") * (0.2 / np.sqrt(DIMENSIONS))
    asked /= np.linalg.norm(asked, axis=1, keepdims=True)
    return vectors.astype("<f4"), asked.astype("<f4")


@dataclass(frozen=True)
class Rows:
    account_id: str = "usr_bench"
    base_id: str = "kb_bench"

    def document_id(self, index: int) -> str:
        return f"doc_bench_{index:06d}"


async def write_owners(database: Database, rows: Rows, documents: int) -> None:
    """The account, the base and its documents, through the ORM (few rows)."""
    async with database.session() as session:
        session.add(Account(id=rows.account_id, email="bench@example.com", username="bench"))
        session.add(KnowledgeBase(id=rows.base_id, account_id=rows.account_id, name="bench"))
        await session.flush()
        for index in range(documents):
            session.add(
                Document(
                    id=rows.document_id(index),
                    account_id=rows.account_id,
                    knowledge_base_id=rows.base_id,
                    name=f"document {index}",
                    source_type="text",
                    status="ready",
                    generation=1,
                    chunk_count=CHUNKS_PER_DOCUMENT,
                )
            )
        await session.commit()


def chunk_row(rows: Rows, chunk_id: int) -> dict[str, Any]:
    position = (chunk_id - 1) % CHUNKS_PER_DOCUMENT
    return {
        "id": chunk_id,
        "account_id": rows.account_id,
        "knowledge_base_id": rows.base_id,
        "document_id": rows.document_id((chunk_id - 1) // CHUNKS_PER_DOCUMENT),
        "generation": 1,
        "position": position,
        "text": f"chunk {chunk_id}",
        "search_text": f"chunk {chunk_id}",
        "tokens": 3,
    }


async def load_sqlite(database: Database, rows: Rows, vectors: np.ndarray) -> None:
    await write_owners(database, rows, -(-len(vectors) // CHUNKS_PER_DOCUMENT))
    with progress() as bar:
        task = bar.add_task("SQLite: writing chunks", total=len(vectors))
        for start in range(0, len(vectors), BATCH):
            batch = [
                chunk_row(rows, index + 1) | {"meta": {}, "embedding": vectors[index].tobytes()}
                for index in range(start, min(start + BATCH, len(vectors)))
            ]
            async with database.session() as session:
                await session.execute(insert(Chunk), batch)
                await session.commit()
            bar.advance(task, len(batch))


def _vector_binary(vector: np.ndarray) -> bytes:
    """pgvector's binary form: dimensions, a reserved int16, then big-endian float4s."""
    return struct.pack(">HH", len(vector), 0) + np.asarray(vector, dtype=">f4").tobytes()


def _vector_from_binary(data: bytes) -> np.ndarray:
    (dimensions,) = struct.unpack_from(">H", data)
    return np.frombuffer(data, dtype=">f4", count=dimensions, offset=4).astype("<f4")


async def vector_codec(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "vector", schema="public", encoder=_vector_binary, decoder=_vector_from_binary, format="binary"
    )


async def load_postgres(
    server: PostgresServer, name: str, database: Database, rows: Rows, vectors: np.ndarray
) -> float:
    """COPY the chunks and their vectors, then build the HNSW index and ANALYZE; returns the
    seconds the index took to build."""
    await write_owners(database, rows, -(-len(vectors) // CHUNKS_PER_DOCUMENT))
    connection = await server.connect(name)
    try:
        await vector_codec(connection)
        columns = [*chunk_row(rows, 1), "metadata", "embedding"]
        with progress() as bar:
            task = bar.add_task("PostgreSQL: copying chunks and vectors", total=len(vectors))
            for start in range(0, len(vectors), BATCH):
                indexes = range(start, min(start + BATCH, len(vectors)))
                await connection.copy_records_to_table(
                    "chunks",
                    records=[
                        (*chunk_row(rows, index + 1).values(), "{}", vectors[index].tobytes())
                        for index in indexes
                    ],
                    columns=columns,
                )
                await connection.copy_records_to_table(
                    pgvector.TABLE,
                    records=[(index + 1, rows.base_id, DIMENSIONS, vectors[index]) for index in indexes],
                    columns=["chunk_id", "knowledge_base_id", "dims", "embedding"],
                )
                bar.advance(task, len(indexes))
        await connection.execute("SELECT setval(pg_get_serial_sequence('chunks', 'id'), $1)", len(vectors))
        # Built after the rows are in, as one would for a bulk load; the graph must fit in memory.
        await connection.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        with console.status("PostgreSQL: building the HNSW index (a minute or two at 100k)"):
            await connection.execute(pgvector.index_statement(DIMENSIONS))
            await connection.execute("ANALYZE")
        return time.perf_counter() - started
    finally:
        await connection.close()


BARE_SEARCH = (
    f"SELECT chunk_id FROM {pgvector.TABLE} WHERE dims = {DIMENSIONS} "
    f"ORDER BY embedding::vector({DIMENSIONS}) <=> $1::vector({DIMENSIONS}) LIMIT $2"
)


def ef_search(limit: int) -> int:
    """What Tertulia sets for a search of `limit` rows (store.pgvector._nearest)."""
    return min(pgvector.MAX_EF_SEARCH, max(pgvector.MIN_EF_SEARCH, 2 * limit))


async def check_plans(connection: asyncpg.Connection, database: Database, query: np.ndarray, k: int) -> None:
    """Both PostgreSQL ways must walk the HNSW index, or the comparison means nothing."""
    index = pgvector.index_name(DIMENSIONS)
    bare = "\n".join(row[0] for row in await connection.fetch(f"EXPLAIN {BARE_SEARCH}", query, k))
    async with database.session() as session:
        statement = pgvector.search_statement(DIMENSIONS, use_index=True).element
        explain = text(f"EXPLAIN {statement.text}").bindparams(bindparam("bases", expanding=True))
        explained = await session.execute(
            explain,
            {"query": pgvector.literal(query), "bases": [Rows().base_id], "limit": k},
        )
        tertulia_plan = "\n".join(row[0] for row in explained)
    for way, plan in (("bare", bare), ("pgvector through Tertulia", tertulia_plan)):
        if index not in plan:
            raise RuntimeError(f"the {way} query does not use the HNSW index:\n{plan}")


Search = Callable[[np.ndarray], Awaitable[list[int]]]


async def retrieval(args: argparse.Namespace, server: PostgresServer, folder: Path) -> dict[str, Any]:
    vectors, queries = synthetic_vectors(args.chunks, args.queries)
    rows = Rows()
    sqlite = Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    postgres = Database(await server.create_database("tertulia_retrieval"))
    with console.status("migrating the SQLite file and the PostgreSQL database"):
        await migrate(sqlite)
        await migrate(postgres)
    if not await pgvector.present(postgres):
        raise RuntimeError("the PostgreSQL from pgserver has no chunk_vectors table: no pgvector?")
    started = time.perf_counter()
    await load_sqlite(sqlite, rows, vectors)
    sqlite_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index_seconds = await load_postgres(server, "tertulia_retrieval", postgres, rows, vectors)
    postgres_seconds = time.perf_counter() - started - index_seconds

    bare_connection = await server.connect("tertulia_retrieval")
    await vector_codec(bare_connection)
    await bare_connection.execute(f"SET hnsw.ef_search = {ef_search(args.k)}")
    await check_plans(bare_connection, postgres, queries[0], args.k)

    numpy_index = VectorIndex(None, pgvector=False)
    pgvector_index = VectorIndex(None, pgvector=True)

    async def bare(query: np.ndarray) -> list[int]:
        return [row[0] for row in await bare_connection.fetch(BARE_SEARCH, query, args.k)]

    def through(database: Database, index: VectorIndex) -> Search:
        async def search(query: np.ndarray) -> list[int]:
            async with database.session() as session:  # a session per search, as the server has
                hits = await index.search(session, [rows.base_id], query.tolist(), args.k)
            return [hit.chunk_id for hit in hits]

        return search

    ways: dict[str, Search] = {
        "bare": bare,
        "pgvector": through(postgres, pgvector_index),
        "sqlite": through(sqlite, numpy_index),
    }
    started = time.perf_counter()
    await ways["sqlite"](queries[0])  # loads the base's matrix into this process
    matrix_load = time.perf_counter() - started
    for way in ways.values():  # warm-up: connections, caches
        for query in queries[:5]:
            await way(query)

    latencies: dict[str, list[float]] = {name: [] for name in ways}
    answers: dict[str, list[list[int]]] = {name: [] for name in ways}
    with progress() as bar:
        task = bar.add_task("searching", total=len(queries))
        for number, query in enumerate(queries):
            # Round robin, starting from a different way each time, so drift hits them alike.
            names = list(ways)
            for name in names[number % 3 :] + names[: number % 3]:
                started = time.perf_counter()
                found = await ways[name](query)
                latencies[name].append(time.perf_counter() - started)
                answers[name].append(found)
            bar.advance(task)
    await bare_connection.close()
    await sqlite.dispose()
    await postgres.dispose()

    exact = answers["sqlite"]  # numpy compares every vector: the exact answer

    def recall(name: str) -> float:
        shares = [
            len(set(got) & set(want)) / len(want) for got, want in zip(answers[name], exact, strict=True)
        ]
        return statistics.mean(shares)

    return {
        "chunks": args.chunks,
        "queries": args.queries,
        "k": args.k,
        "ef_search": ef_search(args.k),
        "write_seconds": {"sqlite": round(sqlite_seconds, 1), "postgres": round(postgres_seconds, 1)},
        "hnsw_build_seconds": round(index_seconds, 1),
        "matrix_load_seconds": round(matrix_load, 2),
        "ways": {
            name: {
                "p50_ms": percentile(times, 0.5) * 1000,
                "p95_ms": percentile(times, 0.95) * 1000,
                "recall": recall(name),
            }
            for name, times in latencies.items()
        },
    }


# --- 2. ingest on Celery workers ----------------------------------------------------------


def read_documents(count: int, paragraphs_each: int) -> list[tuple[str, str]]:
    paragraphs = [
        "\n".join(part for part in (row.get("title"), row["text"]) if part)
        for row in map(json.loads, (XQUAD / "corpus.jsonl").read_text(encoding="utf-8").splitlines())
    ]
    documents = []
    for index in range(count):
        start = (index * paragraphs_each) % len(paragraphs)
        chosen = (paragraphs * 2)[start : start + paragraphs_each]
        documents.append((f"document {index}", "\n\n".join(chosen)))
    return documents


class Workers:
    """`tertulia worker` processes, one job at a time each, as tests/scale/conftest.py starts them."""

    def __init__(self, count: int, settings: dict[str, str], folder: Path) -> None:
        source = str(Path(tertulia.__file__).parents[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERTULIA_")}
        env |= {f"TERTULIA_{name.upper()}": value for name, value in settings.items()}
        env |= {
            "PYTHONPATH": os.pathsep.join([source, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "TERTULIA_MODEL_CACHE_DIR": str(Settings().model_cache_dir),
            "HF_HUB_OFFLINE": "1",
        }
        self.logs = [folder / f"worker-{count}-{index}.log" for index in range(count)]
        self.processes = []
        for log in self.logs:
            with log.open("wb") as sink:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "tertulia", "worker", "--concurrency", "1"],
                        env=env,
                        cwd=folder,
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + 120
        while not all("ready." in log.read_text(errors="replace") for log in self.logs):
            if any(process.poll() is not None for process in self.processes) or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("a worker did not start:\n" + self.logs[0].read_text(errors="replace"))
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=30)


@dataclass
class IngestRun:
    workers: int
    seconds: float  # first upload to last document ready
    documents: int  # ready
    chunks: int
    busy_seconds: float  # the jobs' own time, started to finished, summed
    stages: dict[str, float]  # seconds per stage, summed over the jobs

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds


async def ingest_once(
    client: httpx.AsyncClient, documents: list[tuple[str, str]], workers: int, label: str
) -> IngestRun:
    """A new base with every document added, timed until all are ready."""
    base = await client.post(
        "/api/v1/knowledge/bases", json={"name": label, "chunk_size": 512, "chunk_overlap": 64}
    )
    base.raise_for_status()
    base_id = base.json()["id"]
    started = time.perf_counter()
    jobs = []
    for name, content in documents:
        response = await client.post(
            f"/api/v1/knowledge/bases/{base_id}/documents/text", json={"name": name, "content": content}
        )
        response.raise_for_status()
        jobs.append(response.json()["job"]["id"])
    with progress() as bar:
        task = bar.add_task(label, total=len(documents))
        while True:
            listed = (
                await client.get(f"/api/v1/knowledge/bases/{base_id}/documents", params={"limit": 100})
            ).json()["documents"]
            settled = [document for document in listed if document["status"] in ("ready", "failed")]
            bar.update(task, completed=len(settled))
            if len(settled) == len(documents):
                break
            await asyncio.sleep(0.25)
    seconds = time.perf_counter() - started
    ready = [document for document in listed if document["status"] == "ready"]
    busy = 0.0
    stages: dict[str, float] = {}
    for job_id in jobs:
        job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if job["started_at"] and job["finished_at"]:
            busy += (
                datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
            ).total_seconds()
        for stage, spent in job["stages"].items():
            stages[stage] = stages.get(stage, 0.0) + spent
    chunks = sum(document["chunk_count"] for document in ready)
    return IngestRun(workers, seconds, len(ready), chunks, busy, stages)


async def ingest(args: argparse.Namespace, server: PostgresServer, folder: Path) -> dict[str, Any]:
    broker = redis.Redis.from_url(args.redis_url, socket_connect_timeout=2)
    broker.ping()
    broker.flushdb()
    settings = {
        "jobs": "celery",
        "celery_broker_url": args.redis_url,
        "database_url": await server.create_database("tertulia_ingest"),
        "chroma_path": str(folder / "chroma"),
    }
    documents = read_documents(args.docs, args.paragraphs)
    runs: list[IngestRun] = []
    api = Server(**settings)
    try:
        async with httpx.AsyncClient(base_url=api.base, headers=api.account(), timeout=60) as client:
            for count in args.workers:
                with console.status(f"starting {count} worker(s)"):
                    workers = Workers(count, settings, folder)
                try:
                    # Each worker process loads the embedder on its first job: not timed.
                    await ingest_once(client, documents[: 2 * count], count, f"warming up {count} worker(s)")
                    runs.append(
                        await ingest_once(client, documents, count, f"ingesting on {count} worker(s)")
                    )
                finally:
                    workers.stop()
    finally:
        api.stop()
        broker.flushdb()
        broker.close()
    return {"documents": len(documents), "runs": runs}


# --- 3. streamed chats through nginx --------------------------------------------------------

# Far above what any plan allows a user in practice: the bench measures streams, not limits.
PLENTY = {"standard": "1000000/minute", "premium": "1000000/minute", "enterprise": "1000000/minute"}
STREAM_WAYS = {
    "direct": "one process, direct",
    "nginx-1": "nginx, one process",
    "nginx-2": "nginx, two processes",
}


class StandInModel:
    """bench/standin_model.py: the OpenAI stand-in in a process of its own, so that the model's
    side of each stream does not share a core's time slice with the bench's client."""

    def __init__(self, tokens: int, pause: float, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "standin-model.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([SOURCE, str(REPOSITORY), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("standin_model.py")),
                    *("--port", str(self.port), "--tokens", str(tokens), "--pause", str(pause)),
                ],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url, timeout=1)  # any answer (a 404 to a GET) means it listens
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the stand-in model did not start:\n" + self.log.read_text()) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class StreamRun:
    way: str
    streams: int  # asked for
    seconds: float  # first request sent to last stream ended
    first_tokens: list[float]  # seconds from sending to the first piece of text, per stream
    failures: list[str]
    cpu: dict[str, float]  # CPU seconds each part used during the run: where the cores went

    @property
    def finished(self) -> int:
        return len(self.first_tokens)

    @property
    def streams_per_second(self) -> float:
        return self.finished / self.seconds

    def figures(self) -> dict[str, Any]:
        """What --json prints: the run's figures, not every stream's."""
        return {
            "way": self.way,
            "streams": self.streams,
            "finished": self.finished,
            "seconds": round(self.seconds, 2),
            "streams_per_second": round(self.streams_per_second, 2),
            "first_token_p50_ms": round(percentile(self.first_tokens, 0.5) * 1000, 1),
            "first_token_p95_ms": round(percentile(self.first_tokens, 0.95) * 1000, 1),
            "failures": self.failures[:5],
            "cpu_seconds": {part: round(spent, 2) for part, spent in self.cpu.items()},
        }


@dataclass(frozen=True)
class Chatter:
    """One account's API key and bot, asking through the OpenAI-compatible face."""

    key: str
    bot_id: str
    expected: str  # the stand-in's whole reply

    async def stream(self, client: httpx.AsyncClient, question: str) -> float:
        """One streamed completion, read event by event; returns its time to first token."""
        started = time.perf_counter()
        first = 0.0
        pieces: list[str] = []
        async with client.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.key}"},
            json={"model": self.bot_id, "messages": [{"role": "user", "content": question}], "stream": True},
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {(await response.aread())[:200]!r}")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[len("data: ") :])["choices"]:
                    piece = choice["delta"].get("content")
                    if piece:
                        first = first or time.perf_counter()
                        pieces.append(piece)
        if "".join(pieces) != self.expected:
            raise RuntimeError(f"a stream ended early or garbled: {''.join(pieces)[:80]!r}")
        return first - started


async def sign_up_chatter(url: str, expected: str) -> Chatter:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        body = {"username": "streams", "email": "streams@example.com", "password": "a long secret"}
        registered = await client.post("/api/v1/auth/register", json=body)
        registered.raise_for_status()
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        key = await client.post("/api/v1/auth/api-keys", headers=headers, json={"name": "bench"})
        key.raise_for_status()
        bot = await client.post(
            "/api/v1/bots/",
            headers=headers,
            json={"name": "Streams", "llm_config": {"provider": "openai", "model": "gpt-4o"}},
        )
        bot.raise_for_status()
        return Chatter(key.json()["key"], bot.json()["id"], expected)


async def stream_run(
    chatter: Chatter,
    url: str,
    way: str,
    streams: int,
    concurrency: int,
    label: str | None,
    parts: dict[str, list[int]],
) -> StreamRun:
    """`streams` chats, `concurrency` at a time, each on a connection of a fresh pool."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    first_tokens: list[float] = []
    failures: list[str] = []
    queue = iter(range(streams))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        with progress() as bar:
            task = bar.add_task(label or "", total=streams, visible=label is not None)

            async def chat() -> None:
                for number in queue:
                    try:
                        first_tokens.append(await chatter.stream(client, f"question {number}"))
                    except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as error:
                        failures.append(f"{type(error).__name__}: {error}")
                    bar.advance(task)

            def used() -> dict[str, float]:
                spent = {part: sum(map(cpu_seconds, pids)) for part, pids in parts.items()}
                return spent | {"bench client": time.process_time()}

            before = used()
            started = time.perf_counter()
            await asyncio.gather(*(chat() for _ in range(concurrency)))
            seconds = time.perf_counter() - started
            after = used()
    cpu = {part: after[part] - before[part] for part in after}
    return StreamRun(way, streams, seconds, first_tokens, failures, cpu)


async def streams(args: argparse.Namespace, server: PostgresServer, folder: Path) -> dict[str, Any]:
    shared = redis.Redis.from_url(args.redis_url, socket_connect_timeout=2)
    shared.ping()
    shared.flushdb()
    database_url = await server.create_database("tertulia_streams")
    model = StandInModel(args.tokens, args.token_pause, folder)
    settings = {
        "database_url": database_url,
        "redis_url": args.redis_url,  # every process counts the one account's requests there
        "rate_limit_plans": json.dumps(PLENTY),
        "anonymous_rate_limit": "1000000/minute",
        "openai_api_key": standins.API_KEY,
        "openai_base_url": f"{model.url}/v1",
    }
    env = process_env(settings) | {"HF_HUB_OFFLINE": "1"}
    apis = [ApiProcess(free_port(), env, folder / f"api-{index}.log", folder) for index in range(2)]
    proxies: list[Nginx] = []
    runs: list[StreamRun] = []
    try:
        with console.status("starting two `tertulia serve` processes and two nginx"):
            apis[0].start()
            apis[0].wait_healthy()  # the first migrates the database; the second finds it done
            apis[1].start()
            apis[1].wait_healthy()
            proxies = [Nginx([apis[0].port]), Nginx([api.port for api in apis])]
            for proxy in proxies:
                proxy.start()
        urls = {"direct": apis[0].url, "nginx-1": proxies[0].url, "nginx-2": proxies[1].url}
        parts = {
            "tertulia": [api.process.pid for api in apis if api.process is not None],
            "stand-in model": [model.process.pid],
        }
        chatter = await sign_up_chatter(apis[0].url, "".join(standin_model.reply(args.tokens)))
        for way, url in urls.items():  # warm-up: connections, the bot's first load, caches
            await stream_run(chatter, url, way, 2 * args.concurrency, args.concurrency, None, parts)
        for round_number in range(args.stream_rounds):
            # Each round starts from a different way, so drift hits them alike.
            names = list(urls)[round_number % 3 :] + list(urls)[: round_number % 3]
            for way in names:
                label = f"round {round_number + 1}: {STREAM_WAYS[way]}"
                runs.append(
                    await stream_run(chatter, urls[way], way, args.streams, args.concurrency, label, parts)
                )
        spread = Counter(address for address in proxies[1].upstreams_used() if address != "-")
    finally:
        for proxy in proxies:
            proxy.stop()
        for api in apis:
            api.stop()
        model.stop()
        shared.flushdb()
        shared.close()
    return {
        "streams": args.streams,
        "concurrency": args.concurrency,
        "tokens": args.tokens,
        "token_pause": args.token_pause,
        "runs": runs,
        "spread": sorted(spread.values(), reverse=True),
    }


# --- the report ---------------------------------------------------------------------------


def print_retrieval(figures: dict[str, Any]) -> None:
    ways = figures["ways"]
    base = ways["bare"]
    print(
        f"\nRetrieval: {figures['chunks']} chunks × {DIMENSIONS} dims, {figures['queries']} queries, "
        f"k={figures['k']} (hnsw.ef_search {figures['ef_search']}); written in "
        f"{figures['write_seconds']['sqlite']} s to SQLite, {figures['write_seconds']['postgres']} s to "
        f"PostgreSQL + {figures['hnsw_build_seconds']} s HNSW build; the SQLite matrix loads in "
        f"{figures['matrix_load_seconds']} s on a process's first search"
    )
    labels = {
        "bare": "pgvector, bare asyncpg",
        "pgvector": "pgvector through Tertulia",
        "sqlite": "SQLite + numpy, Tertulia",
    }
    print(f"{'way':<27} {'p50 ms':>8} {'x bare':>7} {'p95 ms':>8} {'x bare':>7} {'recall@k':>9}")
    for name, way in ways.items():
        print(
            f"{labels[name]:<27} {way['p50_ms']:>8.2f} {way['p50_ms'] / base['p50_ms']:>7.2f} "
            f"{way['p95_ms']:>8.2f} {way['p95_ms'] / base['p95_ms']:>7.2f} {way['recall']:>9.3f}"
        )


def print_ingest(figures: dict[str, Any]) -> None:
    runs: list[IngestRun] = figures["runs"]
    fewest = min(run.workers for run in runs)
    base = statistics.mean(run.chunks_per_second for run in runs if run.workers == fewest)
    print(
        f"\nIngest through the API (TERTULIA_JOBS=celery): {figures['documents']} documents, "
        f"multilingual-e5-small on {os.cpu_count()} cores. The embedder is CPU-bound and uses "
        "every core in each worker: the cores, not the workers, limit the gain."
    )
    header = f"{'workers':>7} {'docs':>5} {'chunks':>6} {'seconds':>8} {'docs/s':>7} {'chunks/s':>9}"
    print(f"{header} {f'x {fewest} worker':>10} {'in parallel':>11}  stages (s, summed)")
    for run in runs:
        stages = " ".join(f"{stage} {spent:.1f}" for stage, spent in run.stages.items())
        print(
            f"{run.workers:>7} {run.documents:>5} {run.chunks:>6} {run.seconds:>8.1f} "
            f"{run.documents_per_second:>7.2f} {run.chunks_per_second:>9.2f} "
            f"{run.chunks_per_second / base:>10.2f} "
            f"{run.busy_seconds / run.seconds:>11.2f}  {stages}"
        )


def print_streams(figures: dict[str, Any]) -> None:
    runs: list[StreamRun] = figures["runs"]
    by_way = {way: [run for run in runs if run.way == way] for way in STREAM_WAYS}
    base = statistics.mean(run.streams_per_second for run in by_way["direct"])
    first = {way: [s for run in done for s in run.first_tokens] for way, done in by_way.items()}
    base_p50, base_p95 = percentile(first["direct"], 0.5), percentile(first["direct"], 0.95)
    print(
        f"\nStreamed chats through the OpenAI-compatible face (POST /v1/chat/completions, stream=true, "
        f"a bot on the OpenAI stand-in: {figures['tokens']} pieces, {figures['token_pause'] * 1000:.0f} ms "
        f"apart), {figures['streams']} streams per run, {figures['concurrency']} at a time, on "
        f"PostgreSQL and Redis, {os.cpu_count()} cores shared by everything"
    )
    header = f"{'way':<22} {'streams/s':>21} {'x direct':>8} {'TTFT p50 ms':>11} {'x direct':>8}"
    print(f"{header} {'TTFT p95 ms':>11} {'x direct':>8} {'failed':>6}")
    for way, done in by_way.items():
        rates = " / ".join(f"{run.streams_per_second:.1f}" for run in done)
        rate = statistics.mean(run.streams_per_second for run in done)
        p50, p95 = percentile(first[way], 0.5) * 1000, percentile(first[way], 0.95) * 1000
        print(
            f"{STREAM_WAYS[way]:<22} {rates:>21} {rate / base:>8.2f} {p50:>11.0f} "
            f"{p50 / (base_p50 * 1000):>8.2f} {p95:>11.0f} {p95 / (base_p95 * 1000):>8.2f} "
            f"{sum(len(run.failures) for run in done):>6}"
        )
    for way, done in by_way.items():
        finished = sum(run.finished for run in done) or 1
        spent = ", ".join(
            f"{part} {sum(run.cpu[part] for run in done) / finished * 1000:.1f}" for part in done[0].cpu
        )
        print(f"CPU ms per stream, {STREAM_WAYS[way]}: {spent}")
    failures = [failure for run in runs for failure in run.failures]
    if failures:
        print(f"first failure: {failures[0]}")
    split = " / ".join(map(str, figures["spread"]))
    print(f"nginx's split over the two processes (requests, warm-up included): {split}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=20, help="rows the vector leg is asked for (top_k=5: 20)")
    parser.add_argument("--docs", type=int, default=24, help="documents ingested by each worker count")
    parser.add_argument("--paragraphs", type=int, default=3, help="XQuAD paragraphs per document")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2, 1, 2],
        help="worker processes for each ingest run, in this order (alternated: the machine drifts)",
    )
    parser.add_argument("--streams", type=int, default=400, help="streamed chats in each run")
    parser.add_argument("--concurrency", type=int, default=100, help="streams open at a time")
    parser.add_argument(
        "--stream-rounds", type=int, default=3, help="runs of each way, each round starting from another"
    )
    parser.add_argument("--tokens", type=int, default=24, help="pieces in the stand-in model's reply")
    parser.add_argument("--token-pause", type=float, default=0.02, help="seconds before each piece")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="flushed by the bench")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-streams", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 5000 chunks, 30 queries, 4 docs, 60 streams 20 at a time, one round",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON object with every figure")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.queries, args.docs, args.workers = 5000, 30, 4, [1, 2]
        args.streams, args.concurrency, args.stream_rounds = 60, 20, 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    report: dict[str, Any] = {}
    with console.status("starting PostgreSQL (pgserver)"):
        server = PostgresServer()
    try:
        with tempfile.TemporaryDirectory(prefix="tertulia-bench-scale-") as name:
            folder = Path(name)
            if not args.skip_retrieval:
                report["retrieval"] = await retrieval(args, server, folder)
            if not args.skip_ingest:
                report["ingest"] = await ingest(args, server, folder)
            if not args.skip_streams:
                report["streams"] = await streams(args, server, folder)
    finally:
        server.stop()
    if "retrieval" in report:
        print_retrieval(report["retrieval"])
    if "ingest" in report:
        print_ingest(report["ingest"])
    if "streams" in report:
        print_streams(report["streams"])
    if args.json:
        print(json.dumps(report, default=lambda value: getattr(value, "figures", lambda: value.__dict__)()))


if __name__ == "__main__":
    asyncio.run(main())
