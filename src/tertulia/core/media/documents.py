"""Documents and spreadsheets: their text and tables, read by the same parsers as knowledge
ingestion (core.knowledge.parsing), within a page limit. Synchronous: run in a worker thread."""

import io
from dataclasses import dataclass
from typing import Any

from tertulia.core.errors import Invalid, PayloadTooLarge
from tertulia.core.knowledge import parsing


@dataclass(frozen=True)
class DocumentText:
    content: str
    metadata: dict[str, Any]


def _pdf_pages(data: bytes, name: str) -> int:
    import pypdf

    try:
        return len(pypdf.PdfReader(io.BytesIO(data)).pages)
    except Exception as error:  # precheck opened it already; this is a second line of defence
        raise Invalid(f"could not read the PDF {name!r}", {"field": "file"}) from error


def read_document(
    data: bytes,
    name: str,
    declared_type: str | None,
    *,
    max_bytes: int,
    max_unpacked_bytes: int,
    max_pages: int,
) -> DocumentText:
    pages = None
    if b"%PDF-" in data[:1024]:
        pages = _pdf_pages(data, name)
        if pages > max_pages:
            raise PayloadTooLarge(
                f"{name!r} has {pages} pages, more than the limit of {max_pages}",
                {"field": "file", "pages": pages, "limit_pages": max_pages},
            )
    parsed = parsing.parse_file(
        data, name, declared_type, max_bytes=max_bytes, max_unpacked_bytes=max_unpacked_bytes
    )
    sheets = list(dict.fromkeys(s.metadata["sheet"] for s in parsed.sections if "sheet" in s.metadata))
    headings = list(dict.fromkeys(s.metadata["heading"] for s in parsed.sections if "heading" in s.metadata))
    metadata: dict[str, Any] = {
        "format": parsed.media_type,
        "size": len(data),
        "title": parsed.title,
        "sections": len(parsed.sections),
    }
    if pages is not None:
        metadata["pages"] = pages
    if sheets:
        metadata["sheets"] = sheets
    if headings:
        metadata["headings"] = headings[:100]
    return DocumentText("\n\n".join(section.text for section in parsed.sections), metadata)
