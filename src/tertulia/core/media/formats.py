"""The formats multimodal processing reads, grouped by kind, and telling a file's kind from
its content (its name and declared type only break ties among text formats)."""

from pathlib import PurePath
from typing import Literal

from tertulia.core.errors import Invalid
from tertulia.core.knowledge import parsing

Kind = Literal["image", "audio", "video", "document", "spreadsheet"]
AUDIO_OR_VIDEO = "audio_or_video"  # a media container: its streams (ffprobe) tell which

# What `/formats` lists, by kind. Documents and spreadsheets are what the ingestion parsers
# read (core.knowledge.parsing); audio and video are whatever Debian's ffmpeg decodes, of
# which these are the usual ones.
FORMATS: dict[Kind, tuple[str, ...]] = {
    "image": ("jpg", "jpeg", "png", "gif", "bmp", "webp", "tiff"),
    "audio": ("mp3", "wav", "flac", "m4a", "ogg", "opus", "aac"),
    "video": ("mp4", "avi", "mov", "mkv", "webm"),
    "document": ("pdf", "docx", "txt", "md", "html", "json"),
    "spreadsheet": ("xlsx", "csv"),
}

_SPREADSHEETS = {parsing.XLSX, "text/csv"}


def supported() -> dict[str, list[str]]:
    return {kind: list(extensions) for kind, extensions in FORMATS.items()}


def _extension(name: str) -> str:
    return PurePath(name).suffix.lower().lstrip(".")


def sniff(data: bytes) -> str | None:
    """An image format (Pillow's name for it) or AUDIO_OR_VIDEO, from the first bytes."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM") and len(head) >= 26:
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI "):
        return AUDIO_OR_VIDEO
    if head[4:8] == b"ftyp":  # MP4, M4A, MOV, 3GP
        return AUDIO_OR_VIDEO
    if head.startswith((b"ID3", b"fLaC", b"OggS", b"\x1a\x45\xdf\xa3", b"\x00\x00\x01\xba")):
        return AUDIO_OR_VIDEO  # MP3 with tags, FLAC, Ogg, Matroska/WebM, MPEG program stream
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return AUDIO_OR_VIDEO  # an MPEG audio or ADTS AAC frame
    return None


def unsupported(name: str, reason: str) -> Invalid:
    return Invalid(
        f"{name!r} {reason}; multimodal processing reads: "
        + "; ".join(f"{kind}: {', '.join(extensions)}" for kind, extensions in FORMATS.items()),
        {"field": "file", "reason": "unsupported_media_type", "supported": supported()},
    )


def classify(
    data: bytes, filename: str, declared_type: str | None, *, max_bytes: int, max_unpacked_bytes: int
) -> str:
    """The kind a file is read as: "image:<FORMAT>", AUDIO_OR_VIDEO, "document" or "spreadsheet".

    The content decides: a file named .png that is not an image is refused (a wrong or
    broken file), not read as something else. Documents go through the ingestion parsers'
    own checks (a zip bomb, a PDF that cannot be opened).
    """
    name = PurePath(filename).name or "the file"
    extension = _extension(name)
    if not data:
        raise Invalid(f"{name!r} is empty", {"field": "file"})
    sniffed = sniff(data)
    if sniffed == AUDIO_OR_VIDEO:
        return AUDIO_OR_VIDEO
    if sniffed is not None:
        return f"image:{sniffed}"
    if extension in FORMATS["image"]:
        raise Invalid(
            f"{name!r} is not a readable image: its content is not any image format", {"field": "file"}
        )
    if extension in FORMATS["audio"] or extension in FORMATS["video"]:
        raise Invalid(
            f"{name!r} is not readable audio or video: its content is not any media format", {"field": "file"}
        )
    claims_document = extension in FORMATS["document"] or extension in FORMATS["spreadsheet"]
    try:
        media_type = parsing.precheck(
            data, name, declared_type, max_bytes=max_bytes, max_unpacked_bytes=max_unpacked_bytes
        )
    except Invalid as error:
        if claims_document or sniff_document(data):
            raise  # a document of a type we read, but broken or hostile: the parser says why
        raise unsupported(name, "is not a supported type") from error
    return "spreadsheet" if media_type in _SPREADSHEETS else "document"


def sniff_document(data: bytes) -> bool:
    """A PDF or an Office zip, told by its first bytes."""
    return b"%PDF-" in data[:1024] or data.startswith(b"PK\x03\x04")
