"""llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), with the model
loaded as Tertulia loads it: without weight repacking on a CPU with AMX, where a machine-built
llama.cpp can crash on the first forward pass (see tertulia.providers.local_llm)."""

import runpy

from tertulia.providers.local_llm import has_amx, without_weight_repacking

if __name__ == "__main__":
    with without_weight_repacking(has_amx()):
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
