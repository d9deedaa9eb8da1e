"""Real sample documents built in memory: PDFs written by hand, Word and Excel files by their libraries."""

import io
import zipfile

import docx
import openpyxl


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A valid PDF with one page per string (ASCII, lines split on newlines) in Helvetica."""
    count = len(pages)
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (" ".join(f"{3 + 2 * i} 0 R" for i in range(count)).encode(), count),
    }
    font = 3 + 2 * count
    objects[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    for i, text in enumerate(pages):
        lines = [
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj 0 -16 Td"
            for line in text.split("\n")
        ]
        stream = ("BT /F1 12 Tf 72 740 Td " + " ".join(lines) + " ET").encode() if text else b""
        objects[3 + 2 * i] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, 4 + 2 * i)
        )
        objects[4 + 2 * i] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    info = None
    if title:
        info = font + 1
        objects[info] = b"<< /Title (%s) >>" % title.encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    trailer = b"<< /Size %d /Root 1 0 R%s >>" % (size, b" /Info %d 0 R" % info if info else b"")
    out += b"trailer\n%s\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def make_docx() -> bytes:
    """A Word document with a title, nested headings, paragraphs and a table."""
    document = docx.Document()
    document.add_heading("Field Guide", 0)
    document.add_paragraph("This guide explains the installation.")
    document.add_heading("Install", 1)
    document.add_paragraph("Download the package first.")
    document.add_heading("Linux", 2)
    document.add_paragraph("Use the package manager on Linux.")
    table = document.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text = "Distribution"
    table.rows[0].cells[1].text = "Command"
    table.rows[1].cells[0].text = "Debian"
    table.rows[1].cells[1].text = "apt install tertulia"
    document.add_heading("Usage", 1)
    document.add_paragraph("Run the server.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_xlsx(rows: int = 120) -> bytes:
    """A workbook with two sheets: Q1 with a header and `rows` data rows, Q2 with a few."""
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Q1"
    first.append(["Region", "Product", "Units"])
    for i in range(rows):
        first.append([f"Region {i % 7}", f"Product number {i}", i * 3])
    second = workbook.create_sheet("Q2")
    second.append(["Name", "Score"])
    second.append(["Ana", 9.5])
    second.append(["Luis", 7])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def with_extra_entry(archive: bytes, name: str, content: bytes) -> bytes:
    """A copy of a zip archive with one more (deflated) entry."""
    source = zipfile.ZipFile(io.BytesIO(archive))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr(name, content)
    return buffer.getvalue()


def with_replaced_entry(archive: bytes, name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(archive))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, content if info.filename == name else source.read(info.filename))
    return buffer.getvalue()
