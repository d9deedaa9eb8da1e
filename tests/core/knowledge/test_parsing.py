"""Reading real documents into sections, and refusing broken or hostile ones with a clear reason."""

import io
import json
import random
import re
import zipfile

import pypdf
import pytest

from tertulia.core.errors import Invalid, PayloadTooLarge
from tertulia.core.knowledge.parsing import (
    DOCX,
    PDF,
    SUPPORTED,
    XLSX,
    Parsed,
    parse_file,
    parse_nodes,
    parse_qa,
    parse_text,
)
from tests.core.knowledge.samples import (
    make_docx,
    make_pdf,
    make_xlsx,
    with_extra_entry,
    with_replaced_entry,
)

MB = 1024 * 1024


def parse(data: bytes, filename: str, declared: str | None = None, **limits: int) -> Parsed:
    return parse_file(
        data,
        filename,
        declared,
        max_bytes=limits.get("max_bytes", 20 * MB),
        max_unpacked_bytes=limits.get("max_unpacked_bytes", 50 * MB),
    )


def texts(parsed: Parsed) -> str:
    return "\n".join(section.text for section in parsed.sections)


# --- documents that read ---------------------------------------------------------------------


def test_pdf_gives_one_section_per_page_with_its_number_and_the_title() -> None:
    data = make_pdf(["Tertulia reads PDFs.\nEach page apart.", "", "The third page."], title="Manual")
    parsed = parse(data, "manual.pdf")
    assert parsed.media_type == PDF
    assert parsed.title == "Manual"
    assert [(s.metadata, s.text) for s in parsed.sections] == [
        ({"page": 1}, "Tertulia reads PDFs.\nEach page apart."),
        ({"page": 3}, "The third page."),  # the empty second page gives no section
    ]


def test_pdf_with_only_an_owner_password_still_reads() -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(make_pdf(["Open to read."])))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert texts(parse(buffer.getvalue(), "locked-for-editing.pdf")) == "Open to read."


def test_docx_keeps_headings_as_a_path_and_tables_as_rows() -> None:
    parsed = parse(make_docx(), "guide.docx")
    assert parsed.media_type == DOCX
    assert parsed.title == "Field Guide"
    assert [(s.metadata, s.text) for s in parsed.sections] == [
        ({}, "This guide explains the installation."),
        ({"heading": "Install"}, "Download the package first."),
        (
            {"heading": "Install > Linux"},
            "Use the package manager on Linux.\n\nDistribution | Command\nDebian | apt install tertulia",
        ),
        ({"heading": "Usage"}, "Run the server."),
    ]


def test_xlsx_gives_blocks_of_rows_per_sheet_each_with_the_header() -> None:
    parsed = parse(make_xlsx(rows=120), "sales.xlsx")
    assert parsed.media_type == XLSX
    q1 = [s for s in parsed.sections if s.metadata["sheet"] == "Q1"]
    assert len(q1) > 1
    for section in q1:
        assert section.text.split("\n")[0] == "Region | Product | Units"
    assert q1[0].metadata["rows"].startswith("2-")
    assert q1[-1].metadata["rows"].endswith("-121")
    every_row = [line for s in q1 for line in s.text.split("\n")[1:]]
    assert every_row == [f"Region {i % 7} | Product number {i} | {i * 3}" for i in range(120)]
    q2 = [s for s in parsed.sections if s.metadata["sheet"] == "Q2"]
    assert [(s.metadata, s.text) for s in q2] == [
        ({"sheet": "Q2", "rows": "2-3"}, "Name | Score\nAna | 9.5\nLuis | 7")
    ]


def test_csv_detects_the_delimiter_and_repeats_the_header() -> None:
    rows = ["name;city;note"] + [f"person {i};Sevilla;nota número {i}" for i in range(200)]
    parsed = parse("\n".join(rows).encode(), "people.csv")
    assert parsed.media_type == "text/csv"
    assert len(parsed.sections) > 1
    assert all(s.text.startswith("name | city | note\n") for s in parsed.sections)
    assert parsed.sections[0].metadata["rows"].startswith("2-")
    assert "person 199 | Sevilla | nota número 199" in parsed.sections[-1].text


def test_html_keeps_readable_text_and_headings_but_no_scripts_styles_nav_or_comments() -> None:
    page = b"""<!DOCTYPE html><html><head><title>Tertulia docs</title>
    <style>body { color: red }</style><script>var secret = "tracking-code";</script></head>
    <body><nav><a href="/">Home</a> <a href="/menu">Menu entry</a></nav>
    <!-- an editor's comment -->
    <h1>Getting started</h1><p>Tertulia   runs <b>anywhere</b>.</p>
    <h2>Install</h2><p>Run the installer.</p><ul><li>first step</li><li>second step</li></ul>
    <noscript>Enable JavaScript</noscript><div hidden>invisible text</div>
    <h3>Linux</h3><table><tr><th>distro</th><th>tool</th></tr><tr><td>Debian</td><td>apt</td></tr></table>
    <footer>Copyright notice</footer><script>track()</script></body></html>"""
    parsed = parse(page, "docs.html")
    assert parsed.media_type == "text/html"
    assert parsed.title == "Tertulia docs"
    assert [(s.metadata, s.text) for s in parsed.sections] == [
        ({"heading": "Getting started"}, "Tertulia runs anywhere."),
        ({"heading": "Getting started > Install"}, "Run the installer.\n\nfirst step\nsecond step"),
        ({"heading": "Getting started > Install > Linux"}, "distro | tool\nDebian | apt"),
    ]
    everything = texts(parsed)
    for hidden in (
        "secret",
        "tracking",
        "color",
        "Menu entry",
        "comment",
        "JavaScript",
        "invisible",
        "Copyright",
    ):
        assert hidden not in everything


def test_markdown_headings_give_the_heading_path_outside_code_blocks() -> None:
    text = (
        "# Guide\n\nIntro text.\n\n## Install\n\nSteps:\n\n```\n# a shell comment\n```\n\n"
        "### Linux\n\nUse apt.\n\n## Use\n\nRun it."
    )
    parsed = parse(text.encode(), "guide.md")
    assert parsed.media_type == "text/markdown"
    assert parsed.title == "Guide"
    assert [(s.metadata, s.text) for s in parsed.sections] == [
        ({"heading": "Guide"}, "Intro text."),
        ({"heading": "Guide > Install"}, "Steps:\n\n```\n# a shell comment\n```"),
        ({"heading": "Guide > Install > Linux"}, "Use apt."),
        ({"heading": "Guide > Use"}, "Run it."),
    ]


def test_json_is_flattened_to_path_value_lines() -> None:
    data = json.dumps({"product": {"name": "Tertulia", "tags": ["chat", "rag"]}, "price": 0, "beta": True})
    parsed = parse(data.encode(), "product.json")
    assert parsed.media_type == "application/json"
    assert texts(parsed) == (
        "product.name: Tertulia\nproduct.tags[0]: chat\nproduct.tags[1]: rag\n\nprice: 0\n\nbeta: true"
    )


def test_json_list_of_nodes_becomes_one_section_per_node() -> None:
    nodes = [{"text": "First node.", "metadata": {"url": "https://a.example"}}, {"text": "Second node."}]
    parsed = parse(json.dumps(nodes).encode(), "nodes.json")
    assert [(s.metadata, s.text) for s in parsed.sections] == [
        ({"url": "https://a.example"}, "First node."),
        ({}, "Second node."),
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Año de la señal: ¿qué pasó? ¡Café!".encode(), "Año de la señal: ¿qué pasó? ¡Café!"),
        (b"\xef\xbb\xbf" + "con BOM: niño".encode(), "con BOM: niño"),
        ("Año de la señal: ¿qué pasó? ¡Café!".encode("utf-16"), "Año de la señal: ¿qué pasó? ¡Café!"),
        (
            "El niño comió en el jardín. ¿Dónde está la canción? ¡Qué día! Según él, está difícil.".encode(
                "latin-1"
            ),
            "El niño comió en el jardín. ¿Dónde está la canción? ¡Qué día! Según él, está difícil.",
        ),
        ("Año de la señal, ¿qué pasó? Café.".encode("latin-1"), "Año de la señal, ¿qué pasó? Café."),
        ("知识库把文档切成片段。每个片段都有向量！".encode(), "知识库把文档切成片段。每个片段都有向量！"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "latin1", "latin1-short", "chinese"],
)
def test_text_is_decoded_from_its_encoding(data: bytes, expected: str) -> None:
    parsed = parse(data, "notes.txt")
    assert parsed.media_type == "text/plain"
    assert texts(parsed) == expected


def test_whitespace_is_normalised_and_control_characters_dropped() -> None:
    raw = (
        "  Uno\x00 dos\x07\t\ttres  para empezar.\r\n\r\n\r\n\r\nCuatro\u00a0 cinco\ufeff\x1b seis y más.  \n"
    )
    assert texts(parse(raw.encode(), "messy.txt")) == "Uno dos tres para empezar.\n\nCuatro cinco seis y más."
    assert parse_text("a\u2028b\x0cc").sections[0].text == "a\nb\nc"


def test_content_wins_over_a_wrong_extension() -> None:
    parsed = parse(make_pdf(["Really a PDF."]), "report.txt")
    assert parsed.media_type == PDF
    assert texts(parsed) == "Really a PDF."
    assert parse(make_docx(), "guide.bin").media_type == DOCX


def test_declared_type_is_used_when_the_name_says_nothing() -> None:
    assert parse(b"<h1>Hi</h1><p>There.</p>", "index", "text/html; charset=utf-8").media_type == "text/html"
    assert parse(b"plain words", "README").media_type == "text/plain"


def test_text_helpers_nodes_and_questions() -> None:
    assert parse_text("  Hola   mundo ", title="Greeting") == Parsed(
        "Greeting", "text/plain", [parse_text("Hola mundo").sections[0]]
    )
    nodes = parse_nodes([{"text": "Node one", "metadata": {"source": "wiki"}}, {"text": "  "}])
    assert [(s.text, s.metadata) for s in nodes.sections] == [("Node one", {"source": "wiki"})]
    qa = parse_qa([("¿Cuándo abre?", "A las 9."), ("What is it?", "A chatbot server.")])
    assert [(s.text, s.metadata) for s in qa.sections] == [
        ("¿Cuándo abre?", {"answer": "A las 9."}),
        ("What is it?", {"answer": "A chatbot server."}),
    ]


def test_supported_types_are_listed() -> None:
    assert {".txt", ".md", ".html", ".pdf", ".docx", ".xlsx", ".csv", ".json"} <= set(SUPPORTED)


# --- documents that are refused --------------------------------------------------------------


def test_a_truncated_pdf_is_invalid() -> None:
    data = make_pdf(["Some text here.", "More text."])
    with pytest.raises(Invalid, match=r"could not read the PDF 'cut\.pdf': .*damaged or incomplete"):
        parse(data[: len(data) // 2], "cut.pdf")


def test_a_password_protected_pdf_is_invalid() -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(make_pdf(["Secret."])))
    writer.encrypt(user_password="secret", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(
        Invalid, match=re.escape("could not read the PDF 'locked.pdf': it is protected by a password")
    ):
        parse(buffer.getvalue(), "locked.pdf")


def test_a_pdf_without_text_says_so() -> None:
    with pytest.raises(Invalid, match=r"'scan\.pdf' contains no text: .*scanned images"):
        parse(make_pdf(["", ""]), "scan.pdf")


def test_random_bytes_named_pdf_are_not_a_pdf() -> None:
    noise = random.Random(7).randbytes(4000)
    with pytest.raises(Invalid, match=r"'noise\.pdf' is not a PDF: .*\.txt, .*\.docx"):
        parse(noise, "noise.pdf")


def test_random_bytes_named_txt_are_not_text() -> None:
    noise = random.Random(7).randbytes(4000)
    with pytest.raises(Invalid, match=r"'noise\.txt' is not text|'noise\.txt' does not look like text"):
        parse(noise, "noise.txt")


@pytest.mark.parametrize("data", [b"", b"  \n\t \n"], ids=["empty", "blank"])
def test_an_empty_file_is_invalid(data: bytes) -> None:
    with pytest.raises(Invalid, match=re.escape("'empty.txt' is empty: it contains no text to index")):
        parse(data, "empty.txt")


def test_a_program_is_refused_naming_the_supported_types() -> None:
    program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)
    with pytest.raises(
        Invalid, match=r"'setup\.exe' is a program, which cannot be read; supported types: \.txt"
    ):
        parse(program, "setup.exe")


def test_an_unknown_extension_is_refused_naming_the_supported_types() -> None:
    with pytest.raises(Invalid, match=r"'slides\.pptx' is .*supported types: \.txt, \.md"):
        parse(b"PK\x03\x04 not really", "slides.pptx")
    with pytest.raises(Invalid, match=r"'notes\.rtf' is not a supported type; supported types: \.txt"):
        parse(rb"{\rtf1 hello}", "notes.rtf")


def test_an_oversized_file_is_too_large() -> None:
    with pytest.raises(
        PayloadTooLarge, match=re.escape("'big.txt' is 2.0 MB, more than the limit of 1.0 MB")
    ):
        parse(b"a" * (2 * MB), "big.txt", max_bytes=MB)


def test_a_zip_bomb_docx_over_the_unpacked_limit_is_too_large() -> None:
    bomb = with_extra_entry(make_docx(), "word/media/padding.bin", bytes(30 * MB))
    assert len(bomb) < MB
    with pytest.raises(
        PayloadTooLarge, match=r"'bomb\.docx' unpacks to 30\.\d MB, more than the limit of 10\.0 MB"
    ):
        parse(bomb, "bomb.docx", max_unpacked_bytes=10 * MB)


def test_a_highly_compressed_docx_entry_is_a_zip_bomb() -> None:
    bomb = with_extra_entry(make_docx(), "word/media/padding.bin", bytes(8 * MB))
    with pytest.raises(Invalid, match=r"'bomb\.docx' looks like a zip bomb: a part of it expands \d+ times"):
        parse(bomb, "bomb.docx", max_unpacked_bytes=100 * MB)


def test_malformed_xml_in_a_docx_is_invalid() -> None:
    broken = with_replaced_entry(make_docx(), "word/document.xml", b"<w:document><w:body><w:p>")
    with pytest.raises(Invalid, match=r"could not read 'broken\.docx': "):
        parse(broken, "broken.docx")


def test_malformed_xml_in_an_xlsx_is_invalid() -> None:
    broken = with_replaced_entry(
        make_xlsx(rows=3), "xl/worksheets/sheet1.xml", b"<worksheet><sheetData><row>"
    )
    with pytest.raises(Invalid, match=r"could not read 'broken\.xlsx': "):
        parse(broken, "broken.xlsx")


def test_a_truncated_docx_is_invalid() -> None:
    data = make_docx()
    with pytest.raises(Invalid, match=r"'cut\.docx' is a damaged ZIP archive"):
        parse(data[: len(data) // 2], "cut.docx")


def test_a_plain_zip_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(Invalid, match=r"'files\.docx' is a ZIP archive, which cannot be read"):
        parse(buffer.getvalue(), "files.docx")


def test_invalid_json_is_invalid() -> None:
    with pytest.raises(Invalid, match=r"'data\.json' is not valid JSON"):
        parse(b'{"a": ', "data.json")


def test_bad_nodes_and_questions_are_invalid() -> None:
    with pytest.raises(Invalid, match="node 1 has no text"):
        parse_nodes([{"text": "ok"}, {"metadata": {}}])
    with pytest.raises(Invalid, match="question 0 needs both a question and an answer"):
        parse_qa([("", "answer")])
    with pytest.raises(Invalid, match="contains no text"):
        parse_text(" \x00 ")


def billion_laughs(body: bytes) -> bytes:
    entities = b"".join(
        b'<!ENTITY lol%d "%s">' % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"lol") * 10)
        for level in range(1, 10)
    )
    return b'<?xml version="1.0"?><!DOCTYPE lolz [' + entities + b"]>" + body


def test_entity_expansion_in_a_docx_is_invalid() -> None:
    xml = billion_laughs(
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    with pytest.raises(Invalid, match=r"could not read 'laughs\.docx': .*amplification"):
        parse(with_replaced_entry(make_docx(), "word/document.xml", xml), "laughs.docx")


def test_entity_expansion_in_an_xlsx_is_invalid() -> None:
    xml = billion_laughs(
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>'
    )
    with pytest.raises(Invalid, match=r"could not read 'laughs\.xlsx': .*amplification"):
        parse(with_replaced_entry(make_xlsx(rows=3), "xl/worksheets/sheet1.xml", xml), "laughs.xlsx")
