"""Handlebars templates: plain-text rendering, and compiling many leaves nothing behind."""

import sys

import pytest

from greentic.flow.templating import compile_template, compile_value


def test_values_are_inserted_as_plain_text() -> None:
    assert compile_template("hi {{name}}")({"name": "<Ada & co>"}) == "hi <Ada & co>"


def test_a_broken_template_is_a_value_error_naming_the_parser() -> None:
    with pytest.raises(ValueError, match="invalid handlebars template"):
        compile_template("{{#if}")


def test_compiling_templates_registers_no_module() -> None:
    modules = len(sys.modules)
    rendered = [compile_value({"text": f"turn {{{{n}}}} of flow {i}"}) for i in range(200)]
    assert len(sys.modules) == modules  # pybars alone would add 200 modules, forever
    assert rendered[7]({"n": 3}) == {"text": "turn 3 of flow 7"}


def test_the_same_source_is_compiled_once() -> None:
    first, second = compile_template("same {{x}}"), compile_template("same {{x}}")
    assert first.__closure__[0].cell_contents is second.__closure__[0].cell_contents


def test_a_section_on_a_path_repeats_per_item_and_inverts_when_empty() -> None:
    # `{{#a.b}}…{{/a.b}}` as Greentic's weather flows write it (Handlebars' blockHelperMissing)
    template = compile_template("{{#w.days}}- {{date}}{{^w.none}}!{{/w.none}}\n{{/w.days}}"
                                "{{#w.empty}}x{{else}}no days{{/w.empty}}{{#w.place}}{{name}}"
                                "{{/w.place}}")
    assert template({"w": {"days": [{"date": "Mon"}, {"date": "Tue"}], "empty": [],
                           "place": {"name": "Oslo"}}}) == "- Mon!\n- Tue!\nno daysOslo"


def test_values_are_written_as_greentics_handlebars_writes_them() -> None:
    template = compile_template("{{d}}|{{l}}|{{n}}|{{b}}|{{x}}")
    assert template({"d": {"a": 1}, "l": [1, "a", {}], "n": None, "b": True, "x": 2.5}) == \
        "[object]|[1, a, [object]]||true|2.5"
