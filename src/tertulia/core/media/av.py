"""Audio and video through ffprobe and ffmpeg (Debian's): what a file holds, its sound as
16 kHz mono PCM for speech models, and key frames of its picture.

The file is read from a path (containers such as MP4 need to seek). Everything here is
synchronous and waits on a subprocess: callers run it in a worker thread. Every failure a
file can cause ends in `Invalid` or `PayloadTooLarge`; a missing ffmpeg in `Unavailable`.
"""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tertulia.core.errors import Invalid, PayloadTooLarge, Unavailable
from tertulia.providers.base import SPEECH_SAMPLE_RATE

PROBE_TIMEOUT_SECONDS = 30
# Decoding runs far faster than real time; this is a guard against a hostile file, not a limit.
DECODE_SECONDS_PER_MEDIA_SECOND = 0.5
DECODE_MIN_TIMEOUT_SECONDS = 60
FRAME_LONG_SIDE = 1280  # key frames are scaled down to this (OCR and faces need no more)
# An upload is read as a plain media file only: no playlist or concat demuxer that would
# make ffmpeg open other files or URLs a hostile file names, and no protocol but the file.
READ_ONLY_THE_FILE = [
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    "mov,mp4,matroska,webm,wav,avi,mp3,flac,ogg,mpeg,aac",
]


def tools_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Unavailable(
            f"audio and video need {name}, which is not installed on this server (apt-get install ffmpeg)",
            subsystem="media",
        )
    return path


@dataclass(frozen=True)
class Probe:
    container: str
    duration: float | None
    bit_rate: int | None
    audio: dict[str, Any] | None  # the first audio stream
    video: dict[str, Any] | None  # the first video stream that is not cover art

    @property
    def kind(self) -> str:
        return "video" if self.video is not None else "audio"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _rate(value: Any) -> float | None:
    """An ffprobe frame rate such as "30000/1001"."""
    if not isinstance(value, str) or "/" not in value:
        return None
    top, _, bottom = value.partition("/")
    try:
        return round(int(top) / int(bottom), 3) if int(bottom) else None
    except ValueError:
        return None


def probe(path: Path, name: str) -> Probe:
    result = _run(
        [
            _tool("ffprobe"),
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            *READ_ONLY_THE_FILE,
            str(path),
        ],
        PROBE_TIMEOUT_SECONDS,
        name,
    )
    try:
        info = json.loads(result.stdout or b"{}")
    except ValueError:
        info = {}
    streams = info.get("streams") or []
    container = info.get("format") or {}
    if result.returncode != 0 or not streams:
        raise Invalid(
            f"could not read {name!r} as audio or video (the file may be damaged or incomplete)",
            {"field": "file"},
        )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    if audio is None and video is None:
        raise Invalid(f"{name!r} holds neither sound nor picture", {"field": "file"})
    duration = _number(container.get("duration"))
    bit_rate = _number(container.get("bit_rate"))
    return Probe(
        str(container.get("format_name") or ""),
        duration,
        int(bit_rate) if bit_rate is not None else None,
        audio,
        video,
    )


def check_limits(found: Probe, name: str, max_seconds: float, max_pixels: int) -> None:
    if found.duration is not None and found.duration > max_seconds:
        raise PayloadTooLarge(
            f"{name!r} lasts {found.duration:.1f} s, more than the limit of {max_seconds:g} s",
            {"field": "file", "duration": found.duration, "limit_seconds": max_seconds},
        )
    if found.video is not None:
        pixels = int(found.video.get("width") or 0) * int(found.video.get("height") or 0)
        if pixels > max_pixels:
            raise PayloadTooLarge(
                f"{name!r} has frames of {pixels} pixels, more than the limit of {max_pixels} pixels",
                {"field": "file", "pixels": pixels, "limit": max_pixels},
            )


def describe(found: Probe, size: int) -> dict[str, Any]:
    details: dict[str, Any] = {
        "format": found.container,
        "size": size,
        "duration": round(found.duration, 3) if found.duration is not None else None,
        "bit_rate": found.bit_rate,
    }
    if found.audio is not None:
        details |= {
            "audio_codec": found.audio.get("codec_name"),
            "sample_rate": int(found.audio.get("sample_rate") or 0) or None,
            "channels": found.audio.get("channels"),
        }
    if found.video is not None:
        details |= {
            "video_codec": found.video.get("codec_name"),
            "width": found.video.get("width"),
            "height": found.video.get("height"),
            "frame_rate": _rate(found.video.get("avg_frame_rate")) or _rate(found.video.get("r_frame_rate")),
            "has_audio": found.audio is not None,
        }
    return details


def speech_pcm(path: Path, name: str, max_seconds: float) -> bytes:
    """The sound, mixed to mono at 16 kHz as 16-bit PCM, cut at `max_seconds` (a file whose
    duration its header does not tell is checked here, by what decoding yields)."""
    result = _run(
        [
            _tool("ffmpeg"),
            "-nostdin",
            "-v",
            "error",
            *READ_ONLY_THE_FILE,
            "-i",
            str(path),
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(SPEECH_SAMPLE_RATE),
            "-t",
            f"{max_seconds + 1:g}",
            "-f",
            "s16le",
            "-",
        ],
        _decode_timeout(max_seconds),
        name,
    )
    if result.returncode != 0:
        raise Invalid(f"could not decode the sound of {name!r} (the file may be damaged)", {"field": "file"})
    seconds = len(result.stdout) / 2 / SPEECH_SAMPLE_RATE
    if seconds > max_seconds:
        raise PayloadTooLarge(
            f"{name!r} lasts more than the limit of {max_seconds:g} s",
            {"field": "file", "limit_seconds": max_seconds},
        )
    return result.stdout


def key_frames(path: Path, name: str, count: int, duration: float | None, max_seconds: float) -> list[bytes]:
    """Up to `count` key frames as JPEG, spread over the video: only key frames are decoded,
    and of those, one at most every duration / count seconds."""
    spacing = (duration or count) / count
    folder = path.parent / "frames"
    folder.mkdir(exist_ok=True)
    result = _run(
        [
            _tool("ffmpeg"),
            "-nostdin",
            "-v",
            "error",
            "-skip_frame",
            "nokey",
            *READ_ONLY_THE_FILE,
            "-i",
            str(path),
            "-an",
            "-vf",
            f"select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{spacing:.3f})',"
            f"scale='min({FRAME_LONG_SIDE},iw)':-2",
            "-fps_mode",
            "vfr",
            "-frames:v",
            str(count),
            "-q:v",
            "3",
            str(folder / "frame_%03d.jpg"),
        ],
        _decode_timeout(max_seconds),
        name,
    )
    frames = sorted(folder.glob("frame_*.jpg"))
    if result.returncode != 0 and not frames:
        raise Invalid(
            f"could not decode the picture of {name!r} (the file may be damaged)", {"field": "file"}
        )
    return [frame.read_bytes() for frame in frames]


def _decode_timeout(max_seconds: float) -> float:
    return max(DECODE_MIN_TIMEOUT_SECONDS, max_seconds * DECODE_SECONDS_PER_MEDIA_SECOND)


def _run(command: list[str], timeout: float, name: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise Invalid(f"reading {name!r} took longer than {timeout:g} s", {"field": "file"}) from error
