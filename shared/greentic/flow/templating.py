"""Handlebars templates (pybars3), compiled once per flow version.

Chat text is not HTML, so values are inserted as they are (no `&lt;` in replies).
"""

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

import pybars
import pybars._compiler

pybars._compiler.escape = lambda text: text  # chat replies are plain text, never HTML


def _as_text(value: Any) -> str:
    """A value as handlebars-rust writes it into text (its `JsonRender`), as Greentic's
    templates show it: a mapping is `[object]`, a list `[a, b]`, null nothing, booleans
    `true`/`false`."""
    if isinstance(value, dict):
        return "[object]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_as_text(item) for item in value) + "]"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _prepare(value: Any, _should_escape: bool) -> Any:
    return value if isinstance(value, pybars.strlist) else _as_text(value)


pybars._compiler.prepare = _prepare  # what compiled templates import to write a value

_compiler = pybars.Compiler()
Template = Callable[[dict[str, Any]], str]

# `{{#a.b}}…{{/a.b}}`: a section on a path (Handlebars' blockHelperMissing, which
# handlebars-rust and Greentic's templates use); pybars parses only a plain name there, so the
# path is handed to a `section` helper with the same meaning
_PATH_SECTION = re.compile(r"\{\{([#^/])\s*([A-Za-z_@][\w@-]*(?:\.[\w@-]+)+)\s*\}\}")


def _section(this: Any, options: dict[str, Any], value: Any) -> Any:
    """A list repeats the block per item, a mapping becomes its context, another true value
    renders it once, a false or empty one renders the `{{else}}` part."""
    if isinstance(value, list):
        return [part for item in value for part in options["fn"](item)] if value \
            else options["inverse"](this)
    if value:
        return options["fn"](value if isinstance(value, dict) else this)
    return options["inverse"](this)


def _unsection(this: Any, options: dict[str, Any], value: Any) -> Any:
    """`{{^a.b}}`: the block when the value is false or empty."""
    return options["inverse"](this) if value else options["fn"](this)


_HELPERS = {"__section": _section, "__unsection": _unsection}


def _with_path_sections(source: str) -> str:
    helper = {"#": "__section", "^": "__unsection"}
    open_blocks: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        if match[1] == "/":
            return f"{{{{/{open_blocks.pop() if open_blocks else '__section'}}}}}"
        open_blocks.append(helper[match[1]])
        return f"{{{{#{helper[match[1]]} {match[2]}}}}}"

    return _PATH_SECTION.sub(rewrite, source)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Callable[[dict[str, Any]], Any]:
    """pybars' compiled function for `source` (re-validating an unchanged pack costs no
    compile)."""
    compiled = _compiler.compile(_with_path_sections(source))
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
    return lambda context: str(compiled(context, helpers=_HELPERS))


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
