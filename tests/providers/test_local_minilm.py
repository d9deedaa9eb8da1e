"""The local English embedder: all-MiniLM-L6-v2 (int8 ONNX) with the shipped tokenizer."""

import numpy as np
import pytest

from tertulia.providers.local_minilm import MAX_TOKENS, LocalMiniLMEmbedder


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLMEmbedder:
    return LocalMiniLMEmbedder(threads=2)


async def test_vectors_are_unit_length_and_close_for_close_meanings(embedder: LocalMiniLMEmbedder) -> None:
    question, answer, unrelated = await embedder.embed(
        [
            "How long does a refund take?",
            "Refunds are paid back to your card within fourteen days.",
            "The castle was built in the twelfth century on a granite hill.",
        ],
        "passage",
    )
    vectors = np.array([question, answer, unrelated])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > embedder.relevance_floor > float(vectors[0] @ vectors[2])


async def test_batches_of_mixed_lengths_keep_each_texts_own_vector(embedder: LocalMiniLMEmbedder) -> None:
    texts = [("word " * (n * 7 % 40 + 1)).strip() + f" number {n}" for n in range(70)]
    together = await embedder.embed(texts, "passage")
    alone = [(await embedder.embed([text], "passage"))[0] for text in texts[:5]]
    assert len(together) == 70
    assert np.allclose(np.array(together[:5]), np.array(alone), atol=1e-4)


async def test_a_text_longer_than_the_model_reads_is_embedded_from_its_start(
    embedder: LocalMiniLMEmbedder,
) -> None:
    long = "The harbour opens at dawn. " * 200
    counted = embedder.counter()(long)
    assert counted > MAX_TOKENS
    [vector] = await embedder.embed([long], "passage")
    [start] = await embedder.embed(["The harbour opens at dawn. " * 40], "passage")
    assert float(np.dot(vector, start)) > 0.99
    assert await embedder.count_tokens(["one two", "three"]) == embedder.counter()("one two") + 3
