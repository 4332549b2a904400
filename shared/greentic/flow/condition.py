"""Route conditions (`prev.confidence >= 0.8 && input.text == "yes"`), evaluated safely.

The text is parsed once into a Python AST restricted to literals, names, attribute/item
access, comparisons, boolean logic and arithmetic — no calls, no `eval`, nothing outside the
flow context. JavaScript-style `&&`, `||`, `!`, `true`, `false` and `null` are accepted.
A missing attribute reads as null; comparing values of unrelated types is false.
"""

import ast
import operator
import re
from collections.abc import Callable
from typing import Any

Condition = Callable[[dict[str, Any]], bool]

_STRING = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_WORDS = [(re.compile(r"&&"), " and "), (re.compile(r"\|\|"), " or "),
          (re.compile(r"!(?!=)"), " not "), (re.compile(r"\btrue\b"), "True"),
          (re.compile(r"\bfalse\b"), "False"), (re.compile(r"\bnull\b"), "None")]
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv, ast.Mod: operator.mod}
MAX_LENGTH = 1000


def _to_python(text: str) -> str:
    parts = _STRING.split(text)
    for index in range(0, len(parts), 2):  # even parts are outside string literals
        for pattern, replacement in _WORDS:
            parts[index] = pattern.sub(replacement, parts[index])
    return "".join(parts)


def _check(node: ast.AST) -> None:
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
               ast.Compare, ast.BinOp, ast.Name, ast.Load, ast.Attribute, ast.Subscript,
               ast.Constant, ast.List, ast.Tuple, *_COMPARE, *_ARITHMETIC)
    for child in ast.walk(node):
        if not isinstance(child, allowed):
            raise ValueError(f"'{type(child).__name__}' is not allowed in a condition")
        if isinstance(child, ast.Attribute) and child.attr.startswith("_"):
            raise ValueError(f"attribute '{child.attr}' is not allowed in a condition")


def _lookup(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list | tuple) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    return None


def _evaluate(node: ast.AST, context: dict[str, Any]) -> Any:
    match node:
        case ast.Expression(body=body):
            return _evaluate(body, context)
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            return context.get(name)
        case ast.Attribute(value=base, attr=attr):
            return _lookup(_evaluate(base, context), attr)
        case ast.Subscript(value=base, slice=index):
            return _lookup(_evaluate(base, context), _evaluate(index, context))
        case ast.List(elts=items) | ast.Tuple(elts=items):
            return [_evaluate(item, context) for item in items]
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _evaluate(operand, context)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_evaluate(operand, context)
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_evaluate(v, context) for v in values)
        case ast.BoolOp(op=ast.Or(), values=values):
            return any(_evaluate(v, context) for v in values)
        case ast.BinOp(left=left, op=op, right=right):
            return _ARITHMETIC[type(op)](_evaluate(left, context), _evaluate(right, context))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _evaluate(left, context)
            for op, comparator in zip(ops, comparators, strict=True):
                right = _evaluate(comparator, context)
                if not _COMPARE[type(op)](current, right):
                    return False
                current = right
            return True
    raise ValueError(f"cannot evaluate {type(node).__name__}")


def compile_condition(text: str) -> Condition:
    """Parse a condition once; raises ValueError saying what is wrong with it."""
    source = text.strip()
    if source.startswith("{{") and source.endswith("}}"):
        source = source[2:-2].strip()
    if not source:
        raise ValueError("condition is empty")
    if len(source) > MAX_LENGTH:
        raise ValueError(f"condition is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(_to_python(source).strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"condition does not parse: {exc.msg}") from None
    _check(tree)

    def condition(context: dict[str, Any]) -> bool:
        try:
            return bool(_evaluate(tree, context))
        except (TypeError, ZeroDivisionError, ArithmeticError):
            return False

    return condition
