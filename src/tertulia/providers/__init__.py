"""Model backends behind one protocol each: chat, embedding, reranking."""
