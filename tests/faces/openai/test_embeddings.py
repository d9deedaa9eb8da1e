"""POST /v1/embeddings through the `openai` client, answered by the real local embedder
(multilingual-e5-small): base64 (the client's default) and float agree, lists keep their
order, and meaning crosses languages."""

import math

import pytest
from openai import AsyncOpenAI

from tests.faces.openai.conftest import EMBEDDING_MODEL, KeyHolder

DIMENSION = 384


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.hypot(*a) / math.hypot(*b)


async def test_base64_and_float_give_the_same_unit_vector(as_alice: AsyncOpenAI) -> None:
    encoded = await as_alice.embeddings.create(model=EMBEDDING_MODEL, input="hola")  # base64 on the wire
    floats = await as_alice.embeddings.create(model=EMBEDDING_MODEL, input="hola", encoding_format="float")
    [one], [other] = encoded.data, floats.data
    assert len(one.embedding) == len(other.embedding) == DIMENSION
    assert one.embedding == pytest.approx(other.embedding, abs=1e-6)
    assert math.hypot(*other.embedding) == pytest.approx(1.0, abs=1e-3)
    assert encoded.object == "list" and encoded.model == EMBEDDING_MODEL
    assert one.object == "embedding" and one.index == 0
    assert encoded.usage.prompt_tokens > 0 and encoded.usage.total_tokens == encoded.usage.prompt_tokens


async def test_a_list_gets_one_vector_per_input_in_order(as_alice: AsyncOpenAI) -> None:
    texts = ["the first", "el segundo", "第三个"]
    batch = await as_alice.embeddings.create(model=EMBEDDING_MODEL, input=texts, encoding_format="float")
    assert [item.index for item in batch.data] == [0, 1, 2]
    for text, item in zip(texts, batch.data, strict=True):
        alone = await as_alice.embeddings.create(model=EMBEDDING_MODEL, input=text, encoding_format="float")
        assert item.embedding == pytest.approx(alone.data[0].embedding, abs=1e-5)


async def test_the_same_meaning_is_closer_across_languages_than_another_topic(as_alice) -> None:
    spanish, english, unrelated = (
        await as_alice.embeddings.create(
            model=EMBEDDING_MODEL,
            input=[
                "El gato duerme en el sofá.",
                "The cat is sleeping on the sofa.",
                "Quarterly tax returns are due at the end of April.",
            ],
        )
    ).data
    same = cosine(spanish.embedding, english.embedding)
    assert same > cosine(spanish.embedding, unrelated.embedding)
    assert same > cosine(english.embedding, unrelated.embedding)


async def test_a_bot_embeds_with_its_own_embedding_model(as_alice, alice: KeyHolder) -> None:
    # A bot that chose no embedding model uses the server's default: the same vectors.
    by_bot = await as_alice.embeddings.create(model=alice.bot_id, input="hola", encoding_format="float")
    direct = await as_alice.embeddings.create(model=EMBEDDING_MODEL, input="hola", encoding_format="float")
    assert by_bot.model == alice.bot_id
    assert by_bot.data[0].embedding == pytest.approx(direct.data[0].embedding, abs=1e-6)
