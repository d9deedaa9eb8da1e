"""Knowledge: bases, documents, chunking, ingestion and retrieval."""
