"""Processing one uploaded file: told apart by its content, then read by the path of its kind.

- image: details, text (OCR), faces, and made files (resized / compressed / converted, a
  thumbnail);
- audio: details and a transcript;
- video: details, key frames (kept as files on request; read for text and faces), and the
  sound track transcribed;
- document, spreadsheet: text and tables through the ingestion parsers.

Nothing here touches the database: the result, with the bytes of the files it made, goes
to core.media.service, which keeps the files and sends the text where it was asked to go.
Each heavy step runs in a worker thread, at most `concurrency` at a time in this process.
"""

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, TypeVar

import anyio

from tertulia.core.errors import Invalid, Unavailable
from tertulia.core.media import av, formats, images
from tertulia.core.media.documents import read_document
from tertulia.providers.base import SPEECH_SAMPLE_RATE, Transcriber, pcm_as_wav

T = TypeVar("T")


@dataclass(frozen=True)
class MediaOptions:
    extract_text: bool = True
    extract_images: bool = False  # a video's key frames kept as files
    extract_audio: bool = False  # a video's or audio file's sound kept as a 16 kHz WAV file
    transcribe: bool = True
    detect_faces: bool = False
    resize: tuple[int, int] | None = None
    compress: bool = False
    quality: int = 80
    format: str | None = None  # jpeg, png, webp, gif, bmp
    thumbnail: bool = True
    ocr_languages: tuple[str, ...] | None = None
    language: str | None = None  # of the speech, if known (else detected)
    max_frames: int | None = None


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int
    max_unpacked_bytes: int
    max_pixels: int
    max_duration_seconds: float
    max_pages: int
    max_frames: int


@dataclass(frozen=True)
class MadeFile:
    name: str
    media_type: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Processed:
    name: str
    kind: str
    content: str
    metadata: dict[str, Any]
    files: list[MadeFile]
    seconds: float = 0.0


@dataclass(frozen=True)
class Toolbox:
    """What this server can do, found once at start."""

    images: bool
    ocr_languages: tuple[str, ...]  # installed Tesseract languages; empty: no OCR
    faces: bool
    audio_video: bool
    transcriber: Transcriber | None

    def capabilities(self) -> dict[str, Any]:
        return {
            "text_extraction": True,
            "image_processing": self.images,
            "ocr": self.images and bool(self.ocr_languages),
            "ocr_languages": list(self.ocr_languages),
            "audio_transcription": self.audio_video and self.transcriber is not None,
            "video_analysis": self.audio_video and self.images,
            "face_detection": self.images and self.faces,
            "object_detection": False,
        }

    def formats(self) -> dict[str, list[str]]:
        """The kinds this server reads: images need Pillow, audio and video ffmpeg."""
        listed = formats.supported()
        if not self.images:
            listed["image"] = []
        if not self.audio_video:
            listed["audio"] = listed["video"] = []
        return listed


def find_tools(transcriber: Transcriber | None) -> Toolbox:
    """Looks for Pillow, Tesseract (and its languages), OpenCV and ffmpeg. Blocking: a thread."""
    try:
        import PIL  # noqa: F401

        have_images = True
    except ImportError:
        have_images = False
    languages: tuple[str, ...] = ()
    try:
        import pytesseract

        languages = tuple(sorted(set(pytesseract.get_languages(config="")) - {"osd", "equ"}))
    except (ImportError, OSError, RuntimeError):  # no pytesseract, or no working tesseract: no OCR
        languages = ()
    return Toolbox(
        have_images, languages, images.face_detection_available(), av.tools_available(), transcriber
    )


class MediaProcessor:
    def __init__(
        self,
        limits: MediaLimits,
        tools: Toolbox,
        ocr_languages: list[str],
        concurrency: int,
    ) -> None:
        self.limits = limits
        self.tools = tools
        self._ocr_default = tuple(language for language in ocr_languages if language in tools.ocr_languages)
        self._slots = anyio.CapacityLimiter(concurrency)

    async def _in_thread(self, work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(work, limiter=self._slots)

    def check(self, options: MediaOptions) -> None:
        """Refuses options that cannot be met, before any file is read."""
        if options.ocr_languages is not None:
            missing = sorted(set(options.ocr_languages) - set(self.tools.ocr_languages))
            if missing or not options.ocr_languages:
                raise Invalid(
                    "OCR languages must be among those installed on this server",
                    {
                        "field": "options.ocr_languages",
                        "unknown": missing,
                        "allowed": list(self.tools.ocr_languages),
                    },
                )
        if options.max_frames is not None and not 1 <= options.max_frames <= self.limits.max_frames:
            raise Invalid(
                f"max_frames is 1 to {self.limits.max_frames}",
                {"field": "options.max_frames", "limit": self.limits.max_frames},
            )
        if options.format is not None and options.format.lower() not in images.OUTPUTS:
            raise Invalid(
                "format is one of " + ", ".join(images.OUTPUTS),
                {"field": "options.format", "allowed": list(images.OUTPUTS)},
            )

    async def process(
        self, data: bytes, filename: str, declared_type: str | None, options: MediaOptions
    ) -> Processed:
        self.check(options)
        started = time.perf_counter()
        name = PurePath(filename).name or "upload"
        limits = self.limits
        kind = await self._in_thread(
            lambda: formats.classify(
                data,
                name,
                declared_type,
                max_bytes=limits.max_bytes,
                max_unpacked_bytes=limits.max_unpacked_bytes,
            )
        )
        if kind.startswith("image:"):
            processed = await self._image(data, name, kind.removeprefix("image:"), options)
        elif kind == formats.AUDIO_OR_VIDEO:
            processed = await self._audio_or_video(data, name, options)
        else:
            document = await self._in_thread(
                lambda: read_document(
                    data,
                    name,
                    declared_type,
                    max_bytes=limits.max_bytes,
                    max_unpacked_bytes=limits.max_unpacked_bytes,
                    max_pages=limits.max_pages,
                )
            )
            processed = Processed(name, kind, document.content, document.metadata, [])
        processed.seconds = time.perf_counter() - started
        return processed

    # --- images -------------------------------------------------------------------------

    def _ocr_languages(self, options: MediaOptions) -> list[str]:
        languages = list(options.ocr_languages or self._ocr_default)
        if not languages:
            raise Unavailable(
                "OCR is not available on this server (install tesseract-ocr with its language "
                "packs), or ask for none: extract_text false",
                {"field": "options.extract_text"},
                subsystem="media",
            )
        return languages

    def _require_faces(self) -> None:
        if not self.tools.faces:
            raise Unavailable(
                "face detection is not available on this server (install tertulia[media]), "
                "or ask for none: detect_faces false",
                {"field": "options.detect_faces"},
                subsystem="media",
            )

    async def _image(self, data: bytes, name: str, file_format: str, options: MediaOptions) -> Processed:
        languages = self._ocr_languages(options) if options.extract_text else []
        if options.detect_faces:
            self._require_faces()
        limits = self.limits

        def work() -> Processed:
            image = images.open_image(data, name, limits.max_pixels)
            metadata = images.describe(image, data, file_format)
            content = images.read_text(image, languages) if languages else ""
            if options.detect_faces:
                faces = images.find_faces(image)
                metadata |= {"faces_detected": len(faces), "faces": faces}
            made = []
            if options.thumbnail:
                made.append(_made("thumbnail", images.thumbnail(image)))
            if options.resize is not None or options.compress or options.format is not None:
                encoded = images.transform(
                    image, file_format, options.resize, options.format, options.compress, options.quality
                )
                made.append(_made("processed", encoded))
            return Processed(name, "image", content, metadata, made)

        return await self._in_thread(work)

    # --- audio and video ------------------------------------------------------------------

    async def _audio_or_video(self, data: bytes, name: str, options: MediaOptions) -> Processed:
        if not self.tools.audio_video:
            raise Unavailable(
                "audio and video need ffmpeg, which is not installed on this server", subsystem="media"
            )
        limits = self.limits
        folder = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="tertulia-media-")))
        try:
            path = folder / ("input" + (PurePath(name).suffix[:16] or ".bin"))
            await anyio.Path(path).write_bytes(data)
            found = await self._in_thread(lambda: av.probe(path, name))
            av.check_limits(found, name, limits.max_duration_seconds, limits.max_pixels)
            metadata = av.describe(found, len(data))
            wants_transcript = options.transcribe and found.audio is not None
            transcriber = self.tools.transcriber
            if wants_transcript and transcriber is None:
                raise Unavailable(
                    "transcription is not available on this server: install tertulia[media] (the local "
                    "Whisper model) or set TERTULIA_TRANSCRIPTION_BASE_URL; or ask for none: "
                    "transcribe false",
                    {"field": "options.transcribe"},
                    subsystem="media",
                )
            made: list[MadeFile] = []
            texts: list[str] = []
            if found.video is not None:
                texts, frame_files, frame_details = await self._frames(path, name, found, options)
                made.extend(frame_files)
                metadata |= frame_details
            if wants_transcript or (options.extract_audio and found.audio is not None):
                pcm = await self._in_thread(lambda: av.speech_pcm(path, name, limits.max_duration_seconds))
                if options.extract_audio:
                    made.append(
                        MadeFile(
                            "audio.wav", "audio/wav", pcm_as_wav(pcm), {"sample_rate": SPEECH_SAMPLE_RATE}
                        )
                    )
                if wants_transcript and transcriber is not None:
                    transcript = await transcriber.transcribe(pcm, options.language)
                    metadata |= {"language": transcript.language, "transcription_model": transcriber.model_id}
                    if found.duration is None:
                        metadata["duration"] = round(len(pcm) / 2 / SPEECH_SAMPLE_RATE, 3)
                    texts.insert(0, transcript.text)
        finally:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))
        content = "\n\n".join(text for text in texts if text)
        return Processed(name, found.kind, content, metadata, made)

    async def _frames(
        self, path: Path, name: str, found: av.Probe, options: MediaOptions
    ) -> tuple[list[str], list[MadeFile], dict[str, Any]]:
        """Key frames, each read like an image: its text and faces, and kept if asked for."""
        if not (options.extract_images or options.extract_text or options.detect_faces):
            return [], [], {}
        languages = self._ocr_languages(options) if options.extract_text else []
        if options.detect_faces:
            self._require_faces()
        limits = self.limits
        count = options.max_frames or min(5, limits.max_frames)
        frames = await self._in_thread(
            lambda: av.key_frames(path, name, count, found.duration, limits.max_duration_seconds)
        )

        def read(number: int, frame: bytes) -> tuple[str, dict[str, Any]]:
            image = images.open_image(frame, f"{name} frame {number}", limits.max_pixels)
            details: dict[str, Any] = {"frame": number}
            text = images.read_text(image, languages) if languages else ""
            if text:
                details["text"] = text
            if options.detect_faces:
                faces = images.find_faces(image)
                details |= {"faces_detected": len(faces), "faces": faces}
            return text, details

        texts, described = [], []
        for number, frame in enumerate(frames, start=1):
            text, details = await self._in_thread(lambda n=number, f=frame: read(n, f))  # type: ignore[misc]
            described.append(details)
            if text:
                texts.append(f"[frame {number}] {text}")
        metadata: dict[str, Any] = {"frames_extracted": len(frames), "frames": described}
        if options.detect_faces:
            # Faces per frame, not people: the most seen in one frame is the best count we have.
            metadata["faces_detected"] = max((d["faces_detected"] for d in described), default=0)
        made = (
            [
                MadeFile(f"frame_{n:03d}.jpg", "image/jpeg", frame, {"frame": n})
                for n, frame in enumerate(frames, 1)
            ]
            if options.extract_images
            else []
        )
        return texts, made, metadata


def _made(stem: str, encoded: images.Encoded) -> MadeFile:
    return MadeFile(
        f"{stem}.{encoded.extension}",
        encoded.media_type,
        encoded.data,
        {"width": encoded.width, "height": encoded.height},
    )
