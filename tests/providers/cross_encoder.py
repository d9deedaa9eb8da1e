"""A small but real cross-encoder, built here in the layout Hugging Face ONNX exports use.

No cross-encoder with weights can be installed on this machine, so the tests build one whose
weights are chosen rather than learned: it reads the pair through a real `tokenizers`
tokenizer ([CLS] query [SEP] passage [SEP], with token type ids) and scores it, in an ONNX
graph that ONNX Runtime runs, by how many of the query's words the passage contains:
logit = 2 × overlap − 3. What it computes is simple enough to predict exactly, which is
what lets a test tell that a ranking came from it.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def overlap_logit(query: str, passage: str) -> float:
    """What the model computes, for the tests to compare with."""
    query_words = set(_words(query))
    return 2.0 * sum(1 for word in _words(passage) if word in query_words) - 3.0


def probability(query: str, passage: str) -> float:
    return float(1.0 / (1.0 + np.exp(-overlap_logit(query, passage))))


def _words(text: str) -> list[str]:
    return [word.strip(".,;:!?¿¡").lower() for word in text.split() if word.strip(".,;:!?¿¡")]


def build(directory: Path, vocabulary: list[str]) -> Path:
    """Writes tokenizer.json, tokenizer_config.json and onnx/model.onnx into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    words = sorted({word.lower() for word in vocabulary} - set(SPECIAL))
    vocab = {token: index for index, token in enumerate(SPECIAL + words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text('{"model_max_length": 128}')
    (directory / "onnx").mkdir(exist_ok=True)
    onnx.save(_graph(len(vocab)), str(directory / "onnx" / "model.onnx"))
    return directory


def _graph(size: int) -> onnx.ModelProto:
    is_word = np.ones(size, dtype=np.float32)
    is_word[: len(SPECIAL)] = 0.0  # [PAD], [UNK], [CLS] and [SEP] never count
    constants = [
        numpy_helper.from_array(np.array([size], dtype=np.int64), "depth"),
        numpy_helper.from_array(np.array([0.0, 1.0], dtype=np.float32), "off_on"),
        numpy_helper.from_array(is_word, "is_word"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one"),
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
        numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three"),
    ]
    nodes = [
        helper.make_node("OneHot", ["input_ids", "depth", "off_on"], ["onehot"], axis=-1),
        helper.make_node("Mul", ["onehot", "is_word"], ["words"]),
        helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["token_type_ids"], ["second"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "second"], ["first"]),
        helper.make_node("Mul", ["mask", "first"], ["in_query"]),
        helper.make_node("Mul", ["mask", "second"], ["in_passage"]),
        helper.make_node("Unsqueeze", ["in_query", "axis2"], ["in_query3"]),
        helper.make_node("Unsqueeze", ["in_passage", "axis2"], ["in_passage3"]),
        helper.make_node("Mul", ["words", "in_query3"], ["query_words"]),
        helper.make_node("Mul", ["words", "in_passage3"], ["passage_words"]),
        helper.make_node("ReduceMax", ["query_words"], ["query_bag"], axes=[1], keepdims=0),
        helper.make_node("ReduceSum", ["passage_words", "axis1"], ["passage_bag"], keepdims=0),
        helper.make_node("Mul", ["query_bag", "passage_bag"], ["shared"]),
        helper.make_node("ReduceSum", ["shared", "axis1"], ["overlap"], keepdims=1),
        helper.make_node("Mul", ["overlap", "two"], ["doubled"]),
        helper.make_node("Sub", ["doubled", "three"], ["logits"]),
    ]
    pairs = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes,
        "overlap-cross-encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, pairs),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, pairs),
            helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, pairs),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
