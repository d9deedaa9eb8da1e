"""The calculator tool: exact arithmetic on an expression, parsed, never evaluated as code.

Numbers are read as exact fractions ("0.1 + 0.2" is 0.3, not 0.30000000000000004); the
operators are + - * / // % ** and parentheses, plus "x% of y" and "x%" as people write them.
Exponents and magnitudes are bounded, so "9**9**9" is refused rather than computed forever.
"""

import ast
import re
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any

from tertulia.core.tools.base import ToolContext, ToolFailed, ToolSpec

MAX_EXPRESSION = 200
MAX_EXPONENT = 64
MAX_DIGITS = 60  # digits of a numerator or denominator, along the way
SHOWN_DECIMALS = 10

SPEC = ToolSpec(
    id="calculator",
    name="Calculator",
    description=(
        "Exact arithmetic with + - * / ** and parentheses. "
        "Write a percentage with the % sign: 21% of 1250 is 21% * 1250."
    ),
    category="utility",
    parameters={
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "Numbers and operators only, like 21% * 1250 or (3 + 4) * 2",
                # The pattern keeps a small model's call evaluable (words are not arithmetic).
                "pattern": r"^[0-9(][0-9.+*/%() -]{0,199}$",
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
    config_schema={},
    # Digits with an operator, or a word for one (en, es, pt, zh).
    asked_by=re.compile(
        r"\d\s*(?:[-+*/x×÷^%]|\*\*)\s*\d|\d\s*%|\bpercent\b|\bpor ?ciento\b|\bpor cento\b|"
        r"\b(?:plus|minus|times|divided|multiplied|squared|más|menos|dividido|multiplicado|mais)\b|"
        r"[加减乘除]|百分之|多少",
        re.IGNORECASE,
    ),
)

_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*(?:of|de|do|da)\s*", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\d(])")
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: lambda a, b: a % b,
}


def _normalized(expression: str) -> str:
    text = expression.strip().replace("×", "*").replace("÷", "/").replace("^", "**").replace(",", "")
    text = _PERCENT_OF.sub(r"(\1/100)*", text)
    return _PERCENT.sub(r"(\1/100)", text)


def _number(node: ast.Constant, source: str) -> Fraction:
    if isinstance(node.value, bool) or not isinstance(node.value, int | float):
        raise ToolFailed("only numbers can be calculated")
    # The literal as written (0.1 is one tenth), not the binary float Python parsed it into.
    # (The offsets count UTF-8 bytes.)
    literal = source.encode()[node.col_offset : node.end_col_offset].decode()
    try:
        return Fraction(Decimal(literal))
    except (InvalidOperation, ValueError) as error:
        raise ToolFailed(f"not a number: {literal}") from error


def _checked(value: Fraction) -> Fraction:
    if len(str(abs(value.numerator))) > MAX_DIGITS or len(str(value.denominator)) > MAX_DIGITS:
        raise ToolFailed("the numbers grow too large to calculate exactly")
    return value


def _evaluate(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, source)
    if isinstance(node, ast.Constant):
        return _number(node, source)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _evaluate(node.operand, source)
        return operand if isinstance(node.op, ast.UAdd) else -operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, source), _evaluate(node.right, source)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        operation = _BINARY.get(type(node.op))
        if operation is None:
            raise ToolFailed("only + - * / // % ** and parentheses can be used")
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise ToolFailed("division by zero")
        return _checked(operation(left, right))
    raise ToolFailed("only numbers, + - * / // % ** and parentheses can be used")


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ToolFailed("only whole-number exponents can be calculated exactly")
    if abs(exponent) > MAX_EXPONENT:
        raise ToolFailed(f"exponents are limited to ±{MAX_EXPONENT}")
    if base == 0 and exponent < 0:
        raise ToolFailed("division by zero")
    return _checked(base ** int(exponent))


def calculate(expression: str) -> Fraction:
    """The exact value of `expression`; ToolFailed says why one cannot be calculated."""
    if not expression.strip():
        raise ToolFailed("the expression is empty")
    if len(expression) > MAX_EXPRESSION:
        raise ToolFailed(f"the expression is longer than {MAX_EXPRESSION} characters")
    source = _normalized(expression)
    if "\n" in source:
        raise ToolFailed("the expression must be one line")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        raise ToolFailed(f"not an arithmetic expression: {expression}") from error
    return _evaluate(tree, source)


def terminates(value: Fraction) -> bool:
    """Whether the value's decimals end (its denominator has no prime factor but 2 and 5)."""
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def shown(value: Fraction) -> str:
    """A value as a person reads it: 435, 0.3, -2.5, and 0.3333333333 for decimals that
    never end (cut at 10 places)."""
    if value.denominator == 1:
        return str(value.numerator)
    with localcontext() as context:
        context.prec = 2 * MAX_DIGITS + SHOWN_DECIMALS
        decimal = Decimal(value.numerator) / Decimal(value.denominator)
        if not terminates(value):
            decimal = round(decimal, SHOWN_DECIMALS)
        return format(decimal.normalize(), "f")


async def run(context: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    expression = str(arguments["expression"])
    value = calculate(expression)
    return {"expression": expression, "result": shown(value), "exact": terminates(value)}
