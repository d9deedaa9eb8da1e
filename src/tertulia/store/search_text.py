"""The words a full-text index sees, the same on SQLite (FTS5) and PostgreSQL (tsvector).

Both engines split on spaces, which finds Spanish words but not Chinese ones (no spaces),
and both treat "cómo" and "como" as different words. So text is normalised once, here,
before either index sees it: lower-cased, accents taken off, and every run of Chinese,
Japanese or Korean characters cut into overlapping pairs (the usual bigram trick: "机器人"
→ "机器 器人"), a lone character kept as it is. The index stores this form beside the
chunk's real text, and a query is normalised the same way, so a two-character Chinese
word is found inside a sentence, and "como" finds "cómo".
"""

import re
import unicodedata

# Han, Hiragana, Katakana, Hangul (syllables and jamo), CJK punctuation excluded.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u1100-\u11ff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")
MAX_QUERY_TERMS = 64


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def terms(text: str) -> list[str]:
    """The index terms of `text`, in order (repeats kept: they count for ranking)."""
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        run = match.group()
        if _IS_CJK.match(run):
            run = unicodedata.normalize("NFKC", run)
            if len(run) == 1:
                found.append(run)
            else:
                found.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            found.append(_fold(run))
    return found


def index_form(text: str) -> str:
    """What the full-text index stores for a chunk."""
    return " ".join(terms(text))


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query, at most MAX_QUERY_TERMS, in order of appearance."""
    return list(dict.fromkeys(terms(text)))[:MAX_QUERY_TERMS]
