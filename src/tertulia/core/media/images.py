"""Images: opened safely (Pillow), described, resized, compressed and converted; their text
read (Tesseract) and their faces found (OpenCV's Haar cascade).

Everything here is synchronous and CPU-bound: callers run it in a worker thread. A file a
user sends can only end in `Invalid` (broken), `PayloadTooLarge` (too many pixels) or
`Unavailable` (a tool this server lacks); no library exception escapes.
"""

import io
import re
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from tertulia.core.errors import Invalid, PayloadTooLarge, TertuliaError, Unavailable
from tertulia.core.knowledge.parsing import clean_text

# Pillow's format name → what an output file is saved as.
OUTPUTS: dict[str, tuple[str, str]] = {
    "jpeg": ("JPEG", "jpg"),
    "png": ("PNG", "png"),
    "webp": ("WEBP", "webp"),
    "gif": ("GIF", "gif"),
    "bmp": ("BMP", "bmp"),
}
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
THUMBNAIL_SIZE = (256, 256)
# Faces are looked for on a copy no longer than this on its long side: the cascade finds
# faces of 30 pixels and up, and a 12-megapixel photo would take seconds for nothing more.
FACE_SEARCH_SIDE = 1600
OCR_TIMEOUT_SECONDS = 120

INSTALL_MEDIA = "pip install 'tertulia[media]'"


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise Unavailable(
            f"image processing is not installed on this server ({INSTALL_MEDIA})", subsystem="media"
        ) from error
    return Image


def open_image(data: bytes, name: str, max_pixels: int) -> Any:
    """The image's first frame, decoded, upright (EXIF orientation applied).

    The pixel count is checked from the header before anything is decoded: a small file
    that claims a huge canvas (a decompression bomb) is refused without being unpacked.
    """
    image_module = _pillow()
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns above its own default limit; the server's limit is checked below.
            warnings.simplefilter("ignore", image_module.DecompressionBombWarning)
            image = image_module.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise PayloadTooLarge(
                    f"{name!r} is {width}×{height} pixels, more than the limit of {max_pixels} pixels",
                    {"field": "file", "pixels": width * height, "limit": max_pixels},
                )
            image.load()
            return ImageOps.exif_transpose(image)
    except TertuliaError:
        raise
    except image_module.DecompressionBombError as error:
        raise PayloadTooLarge(
            f"{name!r} has far too many pixels (a decompression bomb)", {"field": "file", "limit": max_pixels}
        ) from error
    except UnidentifiedImageError as error:
        raise Invalid(f"{name!r} is not an image Pillow can read", {"field": "file"}) from error
    except Exception as error:  # a broken file can make a decoder raise anything
        raise Invalid(
            f"could not read the image {name!r}: {_reason(error)} (the file may be damaged or incomplete)",
            {"field": "file"},
        ) from error


def describe(image: Any, data: bytes, file_format: str) -> dict[str, Any]:
    frames = getattr(image, "n_frames", 1)
    return {
        "width": image.width,
        "height": image.height,
        "format": file_format,
        "size": len(data),
        "mode": image.mode,
        **({"frames": frames} if frames > 1 else {}),
    }


@dataclass(frozen=True)
class Encoded:
    data: bytes
    media_type: str
    extension: str
    width: int
    height: int


def transform(
    image: Any,
    source_format: str,
    resize: tuple[int, int] | None,
    target: str | None,
    compress: bool,
    quality: int,
) -> Encoded:
    """Resized to fit within `resize` (aspect ratio kept), saved as `target` (else as the
    source's format, or PNG where Pillow cannot write that); `compress` re-encodes with the
    given quality (JPEG, WebP) or the smallest lossless coding (PNG)."""
    from PIL import ImageOps

    if resize is not None:
        image = ImageOps.contain(image, resize)
    pillow_format, extension = OUTPUTS.get((target or source_format).lower(), OUTPUTS["png"])
    options: dict[str, Any] = {}
    if pillow_format in ("JPEG", "WEBP"):
        options["quality"] = quality if compress else 95
    if compress and pillow_format == "PNG":
        options["optimize"] = True
    if compress and pillow_format == "JPEG":
        options["optimize"] = True
    return _encode(image, pillow_format, extension, options)


def thumbnail(image: Any) -> Encoded:
    copy = image.copy()
    copy.thumbnail(THUMBNAIL_SIZE)
    return _encode(copy, "JPEG", "jpg", {"quality": 85})


def _encode(image: Any, pillow_format: str, extension: str, options: dict[str, Any]) -> Encoded:
    if pillow_format in ("JPEG", "BMP") and image.mode not in ("RGB", "L"):
        image = _flattened(image)
    elif pillow_format == "WEBP" and image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA")
    out = io.BytesIO()
    image.save(out, pillow_format, **options)
    return Encoded(out.getvalue(), MEDIA_TYPES[pillow_format], extension, image.width, image.height)


def _flattened(image: Any) -> Any:
    """Transparency laid on white, for formats without an alpha channel."""
    from PIL import Image

    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


# --- text (OCR) -----------------------------------------------------------------------------

# Tesseract spaces out CJK characters when a Latin language is read alongside; no space
# belongs between two of them.
_CJK = r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
_SPACED_CJK = re.compile(rf"(?<={_CJK})[ \t]+(?={_CJK})")


def read_text(image: Any, languages: list[str]) -> str:
    try:
        import pytesseract
    except ImportError as error:
        raise Unavailable(
            f"OCR is not installed on this server ({INSTALL_MEDIA})", subsystem="media"
        ) from error
    try:
        text = pytesseract.image_to_string(
            _flattened(image) if image.mode in ("RGBA", "LA", "P", "PA") else image,
            lang="+".join(languages),
            timeout=OCR_TIMEOUT_SECONDS,
        )
    except pytesseract.TesseractNotFoundError as error:
        raise Unavailable(
            "OCR needs Tesseract, which is not installed on this server "
            "(apt-get install tesseract-ocr tesseract-ocr-spa tesseract-ocr-chi-sim)",
            subsystem="media",
        ) from error
    except RuntimeError as error:  # pytesseract's timeout
        raise Invalid(f"reading the image's text took longer than {OCR_TIMEOUT_SECONDS} s") from error
    except pytesseract.TesseractError as error:
        raise Invalid(f"Tesseract could not read the image: {_reason(error)}") from error
    return clean_text(_SPACED_CJK.sub("", text))


# --- faces ------------------------------------------------------------------------------------

_cascades = threading.local()  # a CascadeClassifier is not safe to share between threads


def _cascade() -> Any:
    cascade = getattr(_cascades, "frontal", None)
    if cascade is None:
        try:
            import cv2
        except ImportError as error:
            raise Unavailable(
                f"face detection is not installed on this server ({INSTALL_MEDIA})", subsystem="media"
            ) from error
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if cascade.empty():
            raise Unavailable("OpenCV's face cascade is missing from this installation", subsystem="media")
        _cascades.frontal = cascade
    return cascade


def find_faces(image: Any) -> list[dict[str, int]]:
    """Frontal faces as boxes in the image's own pixels (x, y, width, height)."""
    import cv2
    import numpy as np

    cascade = _cascade()
    gray = image.convert("L")
    scale = min(1.0, FACE_SEARCH_SIDE / max(gray.width, gray.height))
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))))
    pixels = cv2.equalizeHist(np.asarray(gray, dtype=np.uint8))
    found = cascade.detectMultiScale(pixels, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    return [
        {"x": round(x / scale), "y": round(y / scale), "width": round(w / scale), "height": round(h / scale)}
        for x, y, w, h in (found if len(found) else [])
    ]


def face_detection_available() -> bool:
    try:
        _cascade()
    except Unavailable:
        return False
    return True


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())[:200]
    return text or type(error).__name__
