"""The offline token estimate remote models use to trim history to their window."""

import pytest

from tertulia.providers.base import ChatTurn
from tertulia.providers.remote_http import estimate_prompt_tokens, estimate_tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("abcd", 1),
        ("hello world", 3),  # 11 bytes
        ("naïve", 2),  # 6 bytes: the ï takes two
        ("你好世界", 4),  # one token per CJK character, not 12 bytes / 4
        ("こんにちは", 5),
        ("안녕하세요", 5),
        ("Hi 你好", 3),  # "Hi " is one token, then two characters
    ],
)
def test_estimates_tokens_from_bytes_and_cjk_characters(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_a_prompt_costs_more_than_its_texts() -> None:
    turns = [ChatTurn("system", "Be brief."), ChatTurn("user", "你好")]
    assert estimate_prompt_tokens(turns) > estimate_tokens("Be brief.") + estimate_tokens("你好")
    assert estimate_prompt_tokens([]) > 0  # the opening of the reply
