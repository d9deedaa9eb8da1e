"""Knowledge bases with ChatAgentClient: documents added as text and as uploaded files,
ingested in the background, searched, listed and removed."""

from pathlib import Path

import pytest

from chatagent import ChatAgentClient, NotFoundError

ROUTER = "The Zorvex 9 router is configured from the blue panel. Hold the reset key for 12 seconds."
BILLING = "# Pagos\n\nLa factura de Tertulia se paga el día 7 de cada mes con tarjeta o transferencia."


def test_documents_are_ingested_and_found(alice: ChatAgentClient, tmp_path: Path) -> None:
    base = alice.knowledge.create(
        {"name": "产品知识库", "description": "Manuals", "chunk_size": 500, "chunk_overlap": 50}
    )
    assert (base["name"], base["chunk_size"]) == ("产品知识库", 500)
    manual = tmp_path / "pagos.md"
    manual.write_text(BILLING, encoding="utf-8")

    as_text = alice.knowledge.add_text(base["id"], "zorvex.txt", ROUTER, metadata={"title": "Router manual"})
    as_file = alice.knowledge.add_document(base["id"], manual, metadata={"title": "Pagos", "version": "1.0"})
    jobs = [alice.knowledge.wait_for_job(added["job"]["id"]) for added in (as_text, as_file)]

    assert [job["status"] for job in jobs] == ["done", "done"]
    uploaded = alice.knowledge.get_document(base["id"], as_file["id"])
    assert (uploaded["name"], uploaded["status"]) == ("pagos.md", "ready")
    assert uploaded["media_type"] == "text/markdown" and uploaded["metadata"]["version"] == "1.0"
    assert alice.knowledge.list_documents(base["id"])["total"] == 2
    [hit] = alice.knowledge.search(base["id"], "How do I reset the Zorvex router?", top_k=1)["results"]
    assert "12 seconds" in hit["content"] and hit["metadata"]["title"] == "Router manual"
    found = alice.knowledge.search(base["id"], "¿Qué día se paga la factura?", top_k=1, mode="text")
    assert "día 7" in found["results"][0]["content"] and found["total"] == 1

    alice.knowledge.delete_document(base["id"], as_text["id"])
    assert [document["id"] for document in alice.knowledge.list_documents(base["id"])["documents"]] == [
        as_file["id"]
    ]
    assert [listed["id"] for listed in alice.knowledge.list()["knowledge_bases"]] == [base["id"]]
    alice.knowledge.delete(base["id"])
    with pytest.raises(NotFoundError):
        alice.knowledge.get(base["id"])


def test_uploads_take_bytes_open_files_and_named_tuples(alice: ChatAgentClient, tmp_path: Path) -> None:
    base = alice.knowledge.create(name="Uploads")
    path = tmp_path / "router.txt"
    path.write_text(ROUTER, encoding="utf-8")

    with path.open("rb") as opened:
        from_file = alice.knowledge.add_document(base["id"], opened)
    from_tuple = alice.knowledge.add_document(base["id"], ("billing.md", BILLING.encode()))
    from_bytes = alice.knowledge.add_document(base["id"], b"Plain bytes about the blue panel.")

    assert [added["name"] for added in (from_file, from_tuple, from_bytes)] == [
        "router.txt",
        "billing.md",
        "upload",
    ]
    for added in (from_file, from_tuple, from_bytes):
        assert alice.knowledge.wait_for_job(added["job"]["id"])["status"] == "done"
