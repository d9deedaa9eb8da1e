"""The calculator tool's arithmetic: exact, as people write it, and never code."""

from fractions import Fraction

import pytest

from tertulia.core.tools import ToolFailed
from tertulia.core.tools.calculator import calculate, shown


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("12.5% * 3480", "435"),
        ("12.5% of 3,480", "435"),
        ("21% de 1250", "262.5"),
        ("0.1 + 0.2", "0.3"),  # exact, not 0.30000000000000004
        ("(3 + 4) * 2", "14"),
        ("2 ** 10", "1024"),
        ("2 ^ 10", "1024"),
        ("7 // 2", "3"),
        ("7 % 4", "3"),
        ("-5 + +2", "-3"),
        ("1 / 3", "0.3333333333"),
        ("1 / 8", "0.125"),
        ("3480 × 0.125", "435"),
        ("10 ÷ 4", "2.5"),
        ("2 ** -2", "0.25"),
    ],
)
def test_arithmetic_is_exact_and_reads_as_people_write_it(expression: str, expected: str) -> None:
    assert shown(calculate(expression)) == expected


def test_a_value_keeps_every_digit_it_has() -> None:
    assert calculate("0.1 * 3") == Fraction(3, 10)
    assert shown(calculate("123456789.123456789 * 1")) == "123456789.123456789"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('true')", "only numbers"),
        ("open('/etc/passwd')", "only numbers"),
        ("x + 1", "only numbers"),
        ("'a' * 3", "only numbers"),
        ("[1, 2]", "not an arithmetic expression"),
        ("1 +\n2", "one line"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("9 ** 9 ** 9", "exponents are limited"),
        ("2 ** 0.5", "whole-number exponents"),
        ("10 ** 60 * 10 ** 60", "too large"),
        ("", "empty"),
        ("1 +", "not an arithmetic expression"),
        ("1" * 201, "longer than"),
    ],
)
def test_anything_but_bounded_arithmetic_is_refused(expression: str, reason: str) -> None:
    with pytest.raises(ToolFailed, match=reason):
        calculate(expression)
