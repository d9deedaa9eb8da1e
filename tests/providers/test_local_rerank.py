"""The local rerank model: a cross-encoder folder run with ONNX Runtime, and its failures."""

from pathlib import Path

import pytest

from tertulia.core.errors import Unavailable
from tertulia.providers.local_rerank import LocalReranker
from tests.providers import cross_encoder

QUERY = "where is the red door"
PASSAGES = ["the blue window", "a red car", "the red door opens", "nothing here"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = " ".join([QUERY, *PASSAGES]).split()
    return cross_encoder.build(tmp_path_factory.mktemp("overlap"), words)


async def test_pairs_are_scored_by_the_model_as_probabilities(model_dir: Path) -> None:
    scores = await LocalReranker("overlap", model_dir, threads=1).rerank(QUERY, PASSAGES)

    expected = [cross_encoder.probability(QUERY, passage) for passage in PASSAGES]
    assert scores == pytest.approx(expected, abs=1e-6)
    assert max(range(len(PASSAGES)), key=scores.__getitem__) == 2
    assert all(0.0 < score < 1.0 for score in scores)


async def test_more_passages_than_one_batch_keep_their_order(model_dir: Path) -> None:
    passages = [PASSAGES[index % len(PASSAGES)] for index in range(37)]
    scores = await LocalReranker("overlap", model_dir, threads=1).rerank(QUERY, passages)
    assert scores == pytest.approx([cross_encoder.probability(QUERY, p) for p in passages], abs=1e-6)
    assert await LocalReranker("overlap", model_dir, threads=1).rerank(QUERY, []) == []


async def test_a_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match=r"model\.onnx"):
        await LocalReranker("missing", tmp_path, threads=1).rerank(QUERY, PASSAGES)


async def test_a_corrupt_model_file_is_a_clear_error(tmp_path: Path, model_dir: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    (broken / "model.onnx").write_bytes(b"this is not an ONNX file")
    with pytest.raises(Unavailable, match="cannot be loaded"):
        await LocalReranker("broken", broken, threads=1).rerank(QUERY, PASSAGES)
