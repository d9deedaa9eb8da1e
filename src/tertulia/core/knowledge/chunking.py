"""Cutting parsed sections into chunks that fit the embedder, at the most natural boundaries.

A section (a page, a heading's text, a block of rows) is never merged with another. Within
one, text is cut at paragraphs, then sentences, and only where a sentence alone is too long
at lines, clauses and words; characters are split apart only as a last resort (Chinese or
Japanese text with no punctuation). Each sentence is counted once and chunks are packed by
summing those counts; since a tokenizer does not quite add up, each chunk is then counted
whole and trimmed if it came out over the limit.

A knowledge base picks one of four strategies (all of them token-sized, none cuts a word):
- "structured" (the default): sentences packed up to the size, preferring to end a chunk at a
  paragraph break when that still leaves it at least half full;
- "sentence": sentences packed up to the size, paragraph breaks not preferred;
- "paragraph": every paragraph its own chunk (cut further only when it is too long), for
  FAQs and lists whose paragraphs stand alone;
- "fixed": windows of words of the full size, blind to sentences, as most peers cut.
"""

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tertulia.core.knowledge.parsing import Parsed

# How far the overlap may exceed overlap_tokens, so that one sentence a bit longer than it
# still carries over rather than none.
OVERLAP_SLACK = 1.5

Strategy = Literal["structured", "sentence", "paragraph", "fixed"]
STRATEGIES: tuple[Strategy, ...] = ("structured", "sentence", "paragraph", "fixed")

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
# A sentence ends at . ! ? … (with closing quotes) before a space, or at a CJK stop anywhere.
_SENTENCE_END = re.compile(r"(?:[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？；]+[」』”’）)\"']*)\s*")
_CLAUSE_END = re.compile(r"(?:[,;:]+[\"'”’»)\]]*(?=\s)|[，、：]+)\s*")


@dataclass(frozen=True)
class Chunk:
    text: str
    metadata: dict[str, Any]
    tokens: int


@dataclass(frozen=True)
class _Unit:
    """The smallest piece a chunk is built from: usually a sentence."""

    text: str
    sep: str  # what joins it to the unit before it: "\n\n", "\n", " " or "" (CJK)
    cost: int


def chunk(
    parsed: Parsed,
    count_tokens: Callable[[str], int],
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    strategy: Strategy = "structured",
) -> list[Chunk]:
    """Chunks of at most `chunk_tokens` by `count_tokens`, each section apart, in document order.

    Consecutive chunks of a section share about `overlap_tokens` of whole sentences. A
    question (a section with an "answer") is one chunk whatever its length. Each chunk's
    metadata is its section's plus `chunk`, its position in the document.
    """
    if chunk_tokens < 1 or overlap_tokens < 0 or overlap_tokens >= chunk_tokens:
        raise ValueError("chunk_tokens must be positive and overlap_tokens in [0, chunk_tokens)")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown chunking strategy {strategy!r}")
    cutter = _Cutter(count_tokens, chunk_tokens, overlap_tokens, strategy)
    chunks: list[Chunk] = []
    for section in parsed.sections:
        text = section.text.strip()
        if not text:
            continue
        if "answer" in section.metadata:
            pieces = [(text, count_tokens(text))]
        elif strategy == "paragraph":
            pieces = [piece for paragraph, _ in _split_paragraphs(text) for piece in cutter.cut(paragraph)]
        else:
            pieces = cutter.cut(text)
        for piece, tokens in pieces:
            chunks.append(Chunk(piece, {**section.metadata, "chunk": len(chunks)}, tokens))
    return chunks


class _Cutter:
    def __init__(
        self, count_tokens: Callable[[str], int], limit: int, overlap: int, strategy: Strategy
    ) -> None:
        self._count = count_tokens
        self._strategy = strategy
        self._limit = limit
        self._overlap = overlap
        # What every text pays once (special tokens, a "passage: " prefix). An empty text may
        # count one more (a lone word-start marker), so a one-letter word is the better probe.
        self._overhead = max(0, min(count_tokens(""), count_tokens("a") - 1))
        if limit <= self._overhead:
            raise ValueError(f"chunk_tokens must be more than the {self._overhead} tokens of an empty text")
        self._budget = limit - self._overhead

    def cut(self, text: str) -> list[tuple[str, int]]:
        units = list(self._units(text))
        prefix = [0]
        for unit in units:
            prefix.append(prefix[-1] + unit.cost)
        limit, overhead, count = self._limit, self._overhead, len(units)
        pieces: list[tuple[str, int]] = []
        start = fresh = 0  # units[start:fresh] repeat the previous chunk's end
        while fresh < count:
            while start < fresh and overhead + prefix[fresh + 1] - prefix[start] > limit:
                start += 1
            end = fresh + 1
            while end < count and overhead + prefix[end + 1] - prefix[start] <= limit:
                end += 1
            if end < count and self._strategy == "structured":
                end = self._paragraph_end(units, prefix, start, fresh, end)
            while True:
                joined = _join(units[start:end])
                tokens = self._count(joined)
                if tokens <= limit or end - start == 1:
                    break
                if end - 1 > fresh:  # drop from the end about as many tokens as it is over by
                    excess, dropped = tokens - limit, 0
                    while end - 1 > fresh and dropped < excess:
                        end -= 1
                        dropped += units[end].cost
                else:
                    start += 1
            pieces.append((joined, tokens))
            start, fresh = self._overlap_start(units, prefix, start, end), end
        return pieces

    def _paragraph_end(self, units: list[_Unit], prefix: list[int], start: int, fresh: int, end: int) -> int:
        """Ends the chunk at the last paragraph break in it, if that still leaves it half full."""
        for k in range(end - 1, fresh, -1):
            if prefix[k] - prefix[start] < self._budget // 2:
                break
            if units[k].sep == "\n\n":
                return k
        return end

    def _overlap_start(self, units: list[_Unit], prefix: list[int], start: int, end: int) -> int:
        if self._overlap == 0:
            return end
        begin = end
        while begin - 1 > start and prefix[end] - prefix[begin - 1] <= self._overlap:
            begin -= 1
        if begin == end and end - 1 > start and units[end - 1].cost <= self._overlap * OVERLAP_SLACK:
            begin = end - 1
        return begin

    # --- units -----------------------------------------------------------------------------

    def _units(self, text: str) -> Iterator[_Unit]:
        for paragraph, paragraph_sep in _split_paragraphs(text):
            if self._strategy == "fixed":
                for word, sep in _split_words(paragraph, paragraph_sep):
                    yield from self._fit(word, sep, len(_SMALLER))
                continue
            for sentence, sep in _split_after(paragraph, _SENTENCE_END, paragraph_sep):
                yield from self._fit(sentence, sep, 0)

    def _fit(self, text: str, sep: str, level: int) -> Iterator[_Unit]:
        cost = self._cost(text)
        if cost <= self._budget:
            yield _Unit(text, sep, cost)
            return
        for depth in range(level, len(_SMALLER)):
            parts = _SMALLER[depth](text, sep)
            if len(parts) > 1:
                for part, part_sep in parts:
                    yield from self._fit(part, part_sep, depth + 1)
                return
        yield from self._characters(text, sep)

    def _characters(self, text: str, sep: str) -> Iterator[_Unit]:
        """The longest runs of characters that fit: found by doubling, then halving."""
        characters = _graphemes(text)
        start = 0
        while start < len(characters):
            fits, step = start + 1, max(1, self._budget // 2)
            over = None
            while over is None:
                probe = min(len(characters), fits + step)
                if probe == fits:
                    break
                if self._cost("".join(characters[start:probe])) <= self._budget:
                    fits, step = probe, step * 2
                else:
                    over = probe
            if over is not None:
                low, high = fits, over - 1
                while low < high:
                    middle = (low + high + 1) // 2
                    if self._cost("".join(characters[start:middle])) <= self._budget:
                        low = middle
                    else:
                        high = middle - 1
                fits = low
            piece = "".join(characters[start:fits])
            yield _Unit(piece, sep, self._cost(piece))
            start, sep = fits, ""

    def _cost(self, text: str) -> int:
        return max(1, self._count(text) - self._overhead)


def _join(units: list[_Unit]) -> str:
    return units[0].text + "".join(unit.sep + unit.text for unit in units[1:])


def _split_paragraphs(text: str) -> list[tuple[str, str]]:
    paragraphs = [paragraph.strip() for paragraph in _PARAGRAPH.split(text)]
    return [(paragraph, "\n\n") for paragraph in paragraphs if paragraph]


def _split_after(text: str, ends: re.Pattern[str], first_sep: str) -> list[tuple[str, str]]:
    """Cuts after each match of `ends`, keeping how each piece was joined to the one before."""
    pieces: list[tuple[str, str]] = []
    sep, last = first_sep, 0
    for match in ends.finditer(text):
        if match.end() >= len(text):
            break
        piece = text[last : match.end()]
        stripped = piece.strip()
        if stripped:
            pieces.append((stripped, sep))
            trailing = piece[len(piece.rstrip()) :]
            sep = "\n" if "\n" in trailing else " " if trailing else ""
        last = match.end()
    rest = text[last:].strip()
    if rest:
        pieces.append((rest, sep))
    return pieces


def _split_lines(text: str, sep: str) -> list[tuple[str, str]]:
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    return [(line, sep if position == 0 else "\n") for position, line in enumerate(lines)]


def _split_clauses(text: str, sep: str) -> list[tuple[str, str]]:
    return _split_after(text, _CLAUSE_END, sep)


def _split_words(text: str, sep: str) -> list[tuple[str, str]]:
    return [(word, sep if position == 0 else " ") for position, word in enumerate(text.split())]


# Ever smaller pieces of a sentence too long for one chunk.
_SMALLER: list[Callable[[str, str], list[tuple[str, str]]]] = [_split_lines, _split_clauses, _split_words]


def _graphemes(text: str) -> list[str]:
    """Characters with their combining marks, variation selectors and joined emoji kept together."""
    clusters: list[str] = []
    join_next = False
    for character in text:
        code = ord(character)
        attached = (
            unicodedata.combining(character)
            or unicodedata.category(character) in ("Mn", "Mc", "Me")
            or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF
            or code == 0x200D
        )
        if clusters and (attached or join_next):
            clusters[-1] += character
        else:
            clusters.append(character)
        join_next = code == 0x200D
    return clusters


__all__ = ["STRATEGIES", "Chunk", "Strategy", "chunk"]
