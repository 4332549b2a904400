"""Route conditions are evaluated safely over the flow context."""

import pytest

from greentic.flow.condition import compile_condition

CONTEXT = {"prev": {"confidence": 0.9, "tags": ["a", "b"]}, "input": {"text": "Yes please"},
           "state": {"count": 3}}


@pytest.mark.parametrize(("text", "expected"), [
    ("prev.confidence >= 0.8", True),
    ("prev.confidence >= 0.8 && state.count < 3", False),
    ("prev.confidence > 0.95 || state.count == 3", True),
    ("!(state.count == 3)", False),
    ("state.count != 3", False),
    ("'a' in prev.tags and 'c' not in prev.tags", True),
    ("input.text == \"Yes please\"", True),
    ("'&&' == '&&'", True),
    ("prev.missing == null", True),
    ("prev.missing > 1", False),
    ("state.count * 2 + 1 == 7", True),
    ("prev.tags[0] == 'a' && prev.tags[9] == null", True),
    ("{{ state.count == 3 }}", True),
    ("true && !false", True),
    ("1 / 0 == 1", False),
])
def test_conditions_evaluate(text: str, expected: bool) -> None:
    assert compile_condition(text)(CONTEXT) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("a ==", "does not parse"),
    ("__import__('os')", "'Call' is not allowed"),
    ("prev.__class__", "attribute '__class__' is not allowed"),
    ("[x for x in prev]", "not allowed"),
    ("lambda: 1", "not allowed"),
    ("x" * 1001, "longer than 1000"),
])
def test_unsafe_or_broken_conditions_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_condition(text)
