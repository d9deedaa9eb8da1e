"""Reading uploaded documents into clean text sections, keeping pages, headings and sheets.

Everything here is synchronous and CPU-bound: callers run it in a worker thread. Every
failure a user can cause (a wrong type, a broken or hostile file) becomes `Invalid` or
`PayloadTooLarge` naming the file; no library exception escapes.
"""

import codecs
import csv
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

import charset_normalizer

from tertulia.core.errors import Invalid, PayloadTooLarge, TertuliaError

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
JSON = "application/json"

SUPPORTED: dict[str, str] = {
    ".txt": PLAIN,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".csv": CSV,
    ".json": JSON,
}

# Declared media types (an upload's Content-Type, a fetched page's) that name a supported type.
_DECLARED: dict[str, str] = {
    **{media_type: media_type for media_type in SUPPORTED.values()},
    "text/x-markdown": MARKDOWN,
    "application/xhtml+xml": HTML,
    "application/csv": CSV,
    "text/json": JSON,
}

_ZIP_FORMATS = {DOCX: "Word document (.docx)", XLSX: "Excel workbook (.xlsx)"}
# A zip entry that expands more than this is not an office document but a zip bomb; real
# document XML compresses 5 to 30 times, and entries under a mebibyte are let through.
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR = 1024 * 1024
MAX_ZIP_ENTRIES = 10_000

# Spreadsheet and CSV rows are grouped into sections of about this size, header repeated.
ROW_BLOCK_CHARS = 1500
ROW_BLOCK_MAX_ROWS = 50


@dataclass(frozen=True)
class Section:
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    title: str | None
    media_type: str
    sections: list[Section]


def _supported_types() -> str:
    return ", ".join(SUPPORTED)


# --- text normalisation ------------------------------------------------------------------

_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")
# C0/C1 controls except tab and newline, DEL, BOM, soft hyphen, lone surrogates, non-characters.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufeff\xad\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"[^\S\n]+")
_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """One space between words, at most one blank line between paragraphs, no control characters."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _AROUND_NEWLINE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def _one_line(text: str) -> str:
    return " ".join(clean_text(text).split())


# --- the entry points ----------------------------------------------------------------------


def parse_text(text: str, title: str | None = None) -> Parsed:
    """Raw text: one section."""
    cleaned = clean_text(text)
    if not cleaned:
        raise Invalid("the text is empty: it contains no text to index")
    return Parsed(title, PLAIN, [Section(cleaned, {})])


def parse_nodes(nodes: list[dict[str, Any]]) -> Parsed:
    """CriaBot nodes, `[{"text": ..., "metadata": {...}}]`: one section per node."""
    if not isinstance(nodes, list):
        raise Invalid("nodes must be a list of {text, metadata} objects")
    sections = []
    for position, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("text"), str):
            raise Invalid(f"node {position} has no text: each node is {{text, metadata}}", {"node": position})
        metadata = node.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise Invalid(f"node {position} has metadata that is not an object", {"node": position})
        text = clean_text(node["text"])
        if text:
            sections.append(Section(text, dict(metadata)))
    if not sections:
        raise Invalid("the nodes contain no text to index")
    return Parsed(None, JSON, sections)


def parse_qa(pairs: list[tuple[str, str]]) -> Parsed:
    """Questions with their answers: one section per question, the answer in its metadata."""
    sections = []
    for position, (question, answer) in enumerate(pairs):
        question_text, answer_text = clean_text(question), clean_text(answer)
        if not question_text or not answer_text:
            raise Invalid(f"question {position} needs both a question and an answer", {"question": position})
        sections.append(Section(question_text, {"answer": answer_text}))
    if not sections:
        raise Invalid("there are no questions to index")
    return Parsed(None, PLAIN, sections)


def parse_file(
    data: bytes,
    filename: str,
    declared_type: str | None = None,
    *,
    max_bytes: int,
    max_unpacked_bytes: int,
) -> Parsed:
    """Reads a file as the type its content shows, falling back on its extension, then its declared type."""
    name = PurePath(filename).name or "the file"
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{name!r} is {_size(len(data))}, more than the limit of {_size(max_bytes)}",
            {"limit": max_bytes},
        )
    if not data.strip():
        raise Invalid(f"{name!r} is empty: it contains no text to index")
    media_type = _detect(data, name, declared_type)
    try:
        if media_type == PDF:
            parsed = _parse_pdf(data, name)
        elif media_type in _ZIP_FORMATS:
            _check_zip(data, name, media_type, max_unpacked_bytes)
            parsed = _parse_docx(data, name) if media_type == DOCX else _parse_xlsx(data, name)
        else:
            text = decode_text(data, name)
            reader = {HTML: _parse_html, MARKDOWN: _parse_markdown, CSV: _parse_csv, JSON: _parse_json}
            parsed = reader.get(media_type, _parse_plain)(text, name)
    except TertuliaError:
        raise
    except Exception as error:  # a hostile file can make any parser raise anything
        raise Invalid(f"could not read {name!r}: {_reason(error)}") from error
    if not parsed.sections:
        raise Invalid(f"{name!r} contains no text to index")
    return parsed


def precheck(
    data: bytes, filename: str, declared_type: str | None = None, *, max_bytes: int, max_unpacked_bytes: int
) -> str:
    """What can be refused at upload time, cheaply (no parsing): size, emptiness, an
    unsupported or mislabelled type, a zip bomb, a PDF whose structure cannot be opened.
    Returns the media type the file will be read as."""
    name = PurePath(filename).name or "the file"
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{name!r} is {_size(len(data))}, more than the limit of {_size(max_bytes)}", {"limit": max_bytes}
        )
    if not data.strip():
        raise Invalid(f"{name!r} is empty: it contains no text to index")
    media_type = _detect(data, name, declared_type)
    if media_type in _ZIP_FORMATS:
        _check_zip(data, name, media_type, max_unpacked_bytes)
    elif media_type == PDF:
        import pypdf

        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise Invalid(f"could not read the PDF {name!r}: it is protected by a password")
            len(reader.pages)  # the page tree, not the pages' content
        except TertuliaError:
            raise
        except Exception as error:
            raise Invalid(
                f"could not read the PDF {name!r}: {_reason(error)} (the file may be damaged or incomplete)"
            ) from error
    return media_type


# --- telling the type --------------------------------------------------------------------


def _detect(data: bytes, name: str, declared_type: str | None) -> str:
    extension = PurePath(name).suffix.lower()
    by_name = SUPPORTED.get(extension)
    declared = _DECLARED.get((declared_type or "").split(";")[0].strip().lower())
    sniffed = _sniff(data)
    if sniffed in (PDF, DOCX, XLSX):
        return sniffed  # the content wins over a wrong extension
    claimed = by_name or declared
    if sniffed is not None:
        raise Invalid(f"{name!r} is {sniffed}, which cannot be read; supported types: {_supported_types()}")
    if claimed in (PDF, DOCX, XLSX):
        label = "a PDF" if claimed == PDF else f"a {_ZIP_FORMATS[claimed]}"
        raise Invalid(
            f"{name!r} is not {label}: its content does not match any supported type ({_supported_types()})"
        )
    if claimed is None and extension:
        raise Invalid(f"{name!r} is not a supported type; supported types: {_supported_types()}")
    return claimed or PLAIN


def _sniff(data: bytes) -> str | None:
    """The binary formats told by their first bytes; None for anything that may be text."""
    if b"%PDF-" in data[:1024]:
        return PDF
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return "a damaged ZIP archive"
        if "word/document.xml" in names:
            return DOCX
        if "xl/workbook.xml" in names:
            return XLSX
        return "a ZIP archive"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "an old-style Office file (.doc or .xls; save it as .docx or .xlsx)"
    if data.startswith(b"MZ") or data.startswith(b"\x7fELF"):
        return "a program"
    for magic, label in ((b"\x89PNG", "an image"), (b"\xff\xd8\xff", "an image"), (b"GIF8", "an image")):
        if data.startswith(magic):
            return label
    return None


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (BOM or not), UTF-16/32 with a BOM, else whatever charset detection finds."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(encoding), name)
            except UnicodeDecodeError as error:
                raise Invalid(f"{name!r} is not valid {encoding.upper()} text") from error
    if b"\x00" not in data[:4096]:
        try:
            return _check_text(data.decode("utf-8"), name)
        except UnicodeDecodeError:
            pass
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is not None:
        # Short texts often score the same in several Latin code pages; Windows-1252 is by far
        # the most common of them, so it wins a tie.
        tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
        best = next((m for m in tied if m.encoding == "cp1252"), best)
    if best is None or (b"\x00" in data[:4096] and not best.encoding.startswith("utf_")):
        raise Invalid(f"{name!r} is not text in any encoding we recognise (is it a binary file?)")
    return _check_text(str(best), name)


def _check_text(text: str, name: str) -> str:
    sample = text[:100_000]
    controls = sum(1 for char in sample if char == "\ufffd" or (char < " " and char not in "\t\n\r\f"))
    if sample and controls / len(sample) > 0.05:
        raise Invalid(f"{name!r} does not look like text (it is mostly binary data)")
    return text


# --- zip-based formats ---------------------------------------------------------------------


def _check_zip(data: bytes, name: str, media_type: str, max_unpacked_bytes: int) -> None:
    """Refuses archives that would unpack into far more than they weigh, before any parser opens them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise Invalid(f"{name!r} is not a valid {_ZIP_FORMATS[media_type]}: {_reason(error)}") from error
    if len(entries) > MAX_ZIP_ENTRIES:
        raise Invalid(f"{name!r} holds {len(entries)} parts, more than any real document has")
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > max_unpacked_bytes:
        raise PayloadTooLarge(
            f"{name!r} unpacks to {_size(unpacked)}, more than the limit of {_size(max_unpacked_bytes)}",
            {"limit": max_unpacked_bytes},
        )
    for entry in entries:
        ratio = entry.file_size // max(entry.compress_size, 1)
        if entry.file_size > _RATIO_FLOOR and ratio > MAX_COMPRESSION_RATIO:
            raise Invalid(f"{name!r} looks like a zip bomb: a part of it expands {ratio} times")


def _parse_docx(data: bytes, name: str) -> Parsed:
    import docx  # imported here: only a Word upload pays for loading it
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    title = _one_line(document.core_properties.title or "") or None
    builder = _SectionBuilder()
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            builder.add(_docx_table(block))
            continue
        text = block.text
        style = (block.style.name if block.style is not None else "") or ""
        level = _heading_level(style)
        if style == "Title" and title is None:
            title = _one_line(text) or None
        elif level:
            builder.heading(level, _one_line(text))
        else:
            builder.add(text)
    return Parsed(title, DOCX, builder.sections())


def _heading_level(style: str) -> int:
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def _docx_table(table: Any) -> str:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is listed once per column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(_one_line(cell.text))
        line = " | ".join(cells).strip(" |")
        if line:
            rows.append(line)
    return "\n".join(rows)


def _parse_xlsx(data: bytes, name: str) -> Parsed:
    import openpyxl  # imported here: only a spreadsheet upload pays for loading it

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        title = _one_line(workbook.properties.title or "") or None
        sections = []
        for sheet in workbook.worksheets:
            if not hasattr(sheet, "iter_rows"):
                continue
            sheet.reset_dimensions()  # trust the rows present, not the size the file claims
            rows = ([_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True))
            sections.extend(_row_blocks(rows, {"sheet": sheet.title}))
        return Parsed(title, XLSX, sections)
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ").removesuffix(" 00:00:00")
    if isinstance(value, date | time):
        return value.isoformat()
    return _one_line(str(value))


def _row_blocks(rows: Iterable[list[str]], metadata: dict[str, Any]) -> Iterator[Section]:
    """Groups non-empty rows into sections, each starting with the header row."""
    header: str | None = None
    block: list[str] = []
    first = last = 0
    size = 0

    def flush() -> Section:
        text = "\n".join([header, *block]) if header is not None else "\n".join(block)
        return Section(text, {**metadata, "rows": f"{first}-{last}" if first != last else str(first)})

    for number, cells in enumerate(rows, start=1):
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        line = " | ".join(cells)
        if header is None:
            header, first, last = line, number, number
            continue
        if block and (size + len(line) > ROW_BLOCK_CHARS or len(block) >= ROW_BLOCK_MAX_ROWS):
            yield flush()
            block, size = [], 0
        if not block:
            first = number
        block.append(line)
        size += len(line) + 1
        last = number
    if block or header is not None:
        yield flush()


# --- PDF -------------------------------------------------------------------------------------


def _parse_pdf(data: bytes, name: str) -> Parsed:
    import pypdf  # imported here: only a PDF upload pays for loading it

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Invalid(f"could not read the PDF {name!r}: it is protected by a password")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = clean_text(page.extract_text() or "")
            if text:
                sections.append(Section(text, {"page": number}))
    except TertuliaError:
        raise
    except Exception as error:
        raise Invalid(
            f"could not read the PDF {name!r}: {_reason(error)} (the file may be damaged or incomplete)"
        ) from error
    if not sections:
        raise Invalid(
            f"{name!r} contains no text: its pages are empty or scanned images (text in images is not read)"
        )
    return Parsed(_pdf_title(reader), PDF, sections)


def _pdf_title(reader: Any) -> str | None:
    try:
        metadata = reader.metadata
        return (_one_line(str(metadata.title)) or None) if metadata and metadata.title else None
    except Exception:  # a broken info dictionary costs the title, not the document
        return None


# --- text formats --------------------------------------------------------------------------


def _parse_plain(text: str, name: str) -> Parsed:
    cleaned = clean_text(text)
    return Parsed(None, PLAIN, [Section(cleaned, {})] if cleaned else [])


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _parse_markdown(text: str, name: str) -> Parsed:
    builder = _SectionBuilder()
    title = None
    fence: str | None = None
    lines: list[str] = []
    for line in _LINE_BREAKS.sub("\n", text).split("\n"):
        fenced = _FENCE.match(line)
        if fenced:
            fence = None if fence == fenced.group(1) else fence or fenced.group(1)
        heading = None if fence or fenced else _ATX_HEADING.match(line)
        if heading:
            builder.add("\n".join(lines))
            lines = []
            heading_text = _one_line(heading.group(2) or "")
            level = len(heading.group(1))
            if level == 1 and title is None:
                title = heading_text or None
            builder.heading(level, heading_text)
        else:
            lines.append(line)
    builder.add("\n".join(lines))
    return Parsed(title, MARKDOWN, builder.sections())


def _parse_csv(text: str, name: str) -> Parsed:
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows = ([_one_line(cell) for cell in row] for row in reader)
    return Parsed(None, CSV, list(_row_blocks(rows, {})))


def _parse_json(text: str, name: str) -> Parsed:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise Invalid(f"{name!r} is not valid JSON: {_reason(error)}") from error
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, dict) and isinstance(item.get("text"), str) for item in value)
    ):
        return parse_nodes(value)
    if isinstance(value, dict | list):
        blocks = ["\n".join(_flatten(item, path)) for path, item in _children(value, "")]
    else:
        blocks = [_scalar(value)]
    text = clean_text("\n\n".join(block for block in blocks if block))
    return Parsed(None, JSON, [Section(text, {})] if text else [])


def _children(value: dict[str, Any] | list[Any], path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (f"{path}.{key}" if path else str(key)), item
    else:
        for index, item in enumerate(value):
            yield f"{path}[{index}]", item


def _flatten(value: Any, path: str) -> Iterator[str]:
    """`path: value` lines, depth first, without recursion (JSON can nest deeper than Python)."""
    stack = [(path, value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, dict | list):
            stack.extend(reversed(list(_children(item, at))))
        else:
            yield f"{at}: {_scalar(item)}" if at else _scalar(item)


def _scalar(value: Any) -> str:
    return _one_line(value) if isinstance(value, str) else json.dumps(value)


# --- HTML ------------------------------------------------------------------------------------

# Elements whose text is never content: code, styling, navigation, page furniture.
_SKIPPED = {
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "aside",
    "footer",
    "form",
    "button",
    "select",
    "iframe",
    "object",
    "embed",
    "svg",
    "canvas",
    "head",
}
_PARAGRAPHS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "dl",
    "table",
    "figure",
    "figcaption",
    "address",
    "details",
    "summary",
    "hr",
}
_LINES = {"li", "tr", "br", "dt", "dd", "caption"}
_HEADINGS = {f"h{level}": level for level in range(1, 7)}


def _parse_html(text: str, name: str) -> Parsed:
    import lxml.html  # imported here: only an HTML upload pays for loading it

    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)
    root = lxml.html.document_fromstring(text.encode("utf-8"), parser=parser)
    title_element = root.find(".//title")
    title = _one_line(title_element.text_content()) if title_element is not None else ""
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        hidden = element.get("hidden") is not None or element.get("aria-hidden") == "true"
        if element.tag in _SKIPPED or hidden or element.get("role") == "navigation":
            if element.getparent() is not None:
                element.drop_tree()
    mains = root.findall(".//main") or root.findall(".//article")
    body = mains[0] if len(mains) == 1 else root
    builder = _SectionBuilder()
    _walk_html(body, builder)
    if not title:
        first = next(iter(root.iter("h1")), None)
        title = _one_line(first.text_content()) if first is not None else ""
    return Parsed(title or None, HTML, builder.sections())


def _walk_html(root: Any, builder: "_SectionBuilder") -> None:
    """Appends the visible text in document order; headings open sections, blocks break lines."""
    from lxml import etree

    text = _BrokenText()
    in_pre = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _HEADINGS:
                builder.add(text.take())
                builder.heading(_HEADINGS[tag], _one_line(element.text_content()))
                continue  # its text is the heading path; the walk skips its children's text
            if tag in _PARAGRAPHS or tag in _LINES:
                text.brk(2 if tag in _PARAGRAPHS else 1)
            elif tag in ("td", "th") and element.getprevious() is not None:
                text.add(" | ")
            if tag == "pre":
                in_pre += 1
            if element.text and not _inside_heading(element):
                text.add(element.text if in_pre else _collapse(element.text))
        else:
            if tag == "pre":
                in_pre -= 1
            if tag in _PARAGRAPHS or tag in _LINES:
                text.brk(2 if tag in _PARAGRAPHS else 1)
            if element.tail and element is not root and not _inside_heading(element.getparent()):
                text.add(element.tail if in_pre else _collapse(element.tail))
    builder.add(text.take())


class _BrokenText:
    """Text with line (1) or paragraph (2) breaks; several breaks in a row count as the largest."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._pending = 0

    def brk(self, level: int) -> None:
        self._pending = max(self._pending, level)

    def add(self, piece: str) -> None:
        if piece.strip() and self._pending:
            self._parts.append("\n" * self._pending)
            self._pending = 0
        self._parts.append(piece)

    def take(self) -> str:
        taken, self._parts, self._pending = "".join(self._parts), [], 0
        return taken


def _inside_heading(element: Any) -> bool:
    while element is not None:
        if element.tag in _HEADINGS:
            return True
        element = element.getparent()
    return False


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- shared pieces ---------------------------------------------------------------------------


class _SectionBuilder:
    """Collects text under the current heading path; each heading starts a new section."""

    def __init__(self) -> None:
        self._path: list[tuple[int, str]] = []
        self._parts: list[str] = []
        self._sections: list[Section] = []

    def heading(self, level: int, text: str) -> None:
        self._flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        if text:
            self._path.append((level, text))

    def add(self, text: str) -> None:
        if text.strip():
            self._parts.append(text)

    def sections(self) -> list[Section]:
        self._flush()
        return self._sections

    def _flush(self) -> None:
        text = clean_text("\n\n".join(self._parts))
        self._parts = []
        if text:
            metadata = {"heading": " > ".join(title for _, title in self._path)} if self._path else {}
            self._sections.append(Section(text, metadata))


def _size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KB" if count >= 1024 else f"{count} bytes"
    return f"{count / (1024 * 1024):.1f} MB"


def _reason(error: BaseException) -> str:
    text = _one_line(str(error))[:200]
    return text or type(error).__name__


__all__ = [
    "DOCX",
    "PDF",
    "SUPPORTED",
    "XLSX",
    "Parsed",
    "Section",
    "clean_text",
    "decode_text",
    "parse_file",
    "parse_nodes",
    "parse_qa",
    "parse_text",
]
