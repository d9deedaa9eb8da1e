"""Real media for the multimodal tests, made on the spot: text drawn with a CJK font (Pillow),
speech spoken by espeak-ng, a video muxed by ffmpeg, and photographs shipped inside
scikit-image's wheel (`skimage/data/astronaut.png`: NASA's portrait of Eileen Collins, public
domain; `rocket.jpg`: a launch pad, no people).

The tools come from Debian packages that scripts/test installs (espeak-ng, ffmpeg,
fonts-wqy-microhei); a test that lacks one fails saying so rather than skipping.
"""

import importlib.util
import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"the multimodal tests need {name} (Debian's package; scripts/test installs it)")
    return path


def cjk_font() -> str:
    found = subprocess.run(
        [tool("fc-list"), ":lang=zh", "file"], capture_output=True, text=True, check=True
    ).stdout.split()
    fonts = sorted(line.rstrip(":") for line in found if line.rstrip(":").endswith((".ttc", ".ttf", ".otf")))
    if not fonts:
        pytest.fail("the OCR test needs a font with Chinese characters (apt-get install fonts-wqy-microhei)")
    return fonts[0]


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def text_image(lines: list[str], size: int = 40) -> bytes:
    """Black text on white, one line under the other, as a PNG."""
    font = ImageFont.truetype(cjk_font(), size)
    image = Image.new("RGB", (60 + size * 24, 40 + len(lines) * size * 2), "white")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((30, 20 + row * size * 2), line, font=font, fill="black")
    return png(image)


def _skimage_data(name: str) -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the face tests need scikit-image's bundled photographs (pip install 'tertulia[test]')")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def astronaut() -> bytes:
    """A portrait with one face, looking at the camera (512×512 PNG)."""
    return _skimage_data("astronaut.png").read_bytes()


def rocket() -> bytes:
    """A photograph with no one in it (640×427 JPEG)."""
    return _skimage_data("rocket.jpg").read_bytes()


def side_by_side(*images: bytes) -> bytes:
    """The images next to each other: as many faces as they hold together."""
    opened = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
    canvas = Image.new("RGB", (sum(i.width for i in opened), max(i.height for i in opened)), "white")
    left = 0
    for image in opened:
        canvas.paste(image, (left, 0))
        left += image.width
    return png(canvas)


def photo_jpeg(width: int, height: int) -> bytes:
    """A smooth colour gradient (compresses like a photograph), as a JPEG."""
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def speech_wav(text: str, folder: Path, name: str = "speech.wav") -> Path:
    path = folder / name
    subprocess.run([tool("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


def video_mp4(picture: bytes, speech: Path, folder: Path) -> bytes:
    """The picture held still for as long as the speech lasts, a key frame every second (MPEG-4
    video and AAC sound in an MP4)."""
    still = folder / "still.png"
    still.write_bytes(picture)
    out = folder / "clip.mp4"
    subprocess.run(
        [
            tool("ffmpeg"),
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-loop",
            "1",
            "-framerate",
            "4",
            "-i",
            str(still),
            "-i",
            str(speech),
            "-c:v",
            "mpeg4",
            "-q:v",
            "4",
            "-g",
            "4",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def converted(source: Path, folder: Path, extension: str) -> bytes:
    """The sound re-encoded by ffmpeg into another container (mp3, ogg, flac …)."""
    out = folder / f"{source.stem}.{extension}"
    subprocess.run([tool("ffmpeg"), "-nostdin", "-v", "error", "-y", "-i", str(source), str(out)], check=True)
    return out.read_bytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG of a few hundred bytes whose header claims width × height pixels (a
    decompression bomb: decoding it would take gigabytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )


def workbook(rows: dict[str, list[list[object]]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, table in rows.items():
        sheet = book.create_sheet(title)
        for row in table:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
