"""The local model loads without weight repacking where the CPU has AMX (a machine-built
llama.cpp can crash there on the first forward pass), and only inside the loading block."""

import pytest

from tertulia.providers.local_llm import without_weight_repacking

bindings = pytest.importorskip("llama_cpp.llama_cpp")


def test_repacking_is_turned_off_while_loading_and_restored_after() -> None:
    assert bindings.llama_model_default_params().use_extra_bufts is True
    with without_weight_repacking(True):
        assert bindings.llama_model_default_params().use_extra_bufts is False
    assert bindings.llama_model_default_params().use_extra_bufts is True
    with without_weight_repacking(False):
        assert bindings.llama_model_default_params().use_extra_bufts is True
