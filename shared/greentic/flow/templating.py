"""Handlebars templates (pybars3), compiled once per flow version.

Chat text is not HTML, so values are inserted as they are (no `&lt;` in replies).
"""

import functools
import sys
from collections.abc import Callable
from typing import Any

import pybars
import pybars._compiler

pybars._compiler.escape = lambda text: text  # chat replies are plain text, never HTML

_compiler = pybars.Compiler()
Template = Callable[[dict[str, Any]], str]


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Callable[[dict[str, Any]], Any]:
    """pybars' compiled function for `source` (re-validating an unchanged pack costs no
    compile)."""
    compiled = _compiler.compile(source)
    # pybars keeps every template it compiles as a module in sys.modules, forever; without
    # that entry a template lives as long as the flows using it (found by the 10-minute soak)
    sys.modules.pop(compiled.__globals__.get("__name__", ""), None)
    return compiled


def compile_template(source: str) -> Template:
    """Compile a Handlebars template; raises ValueError with the parser's message."""
    try:
        compiled = _compiled(source)
    except Exception as exc:  # pybars raises bare PybarsError / parse errors
        raise ValueError(f"invalid handlebars template: {exc}") from None
    return lambda context: str(compiled(context))


def compile_value(value: Any) -> Callable[[dict[str, Any]], Any]:
    """Compile every string inside a YAML value; the result renders the whole value."""
    if isinstance(value, str):
        if "{{" not in value:
            return lambda _context: value
        return compile_template(value)
    if isinstance(value, dict):
        parts = {key: compile_value(item) for key, item in value.items()}
        return lambda context: {key: part(context) for key, part in parts.items()}
    if isinstance(value, list):
        items = [compile_value(item) for item in value]
        return lambda context: [item(context) for item in items]
    return lambda _context: value
