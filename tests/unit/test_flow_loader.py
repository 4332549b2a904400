"""The loader and validator: every error names file:line:col and the node; Greentic's own
flows load unchanged; no input crashes it."""

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greentic.flow import FlowValidationError, check_flow, load_flow
from greentic.flow.sidecar import read_sidecar
from tests.mutation import MUTATIONS, mutate
from tests.reference import REFERENCE_FLOWS, reference_flow_files

EXAMPLES = Path(__file__).parents[2] / "examples"
VALID = """\
id: sample
type: messaging
schema_version: 2
title: Sample
x-owner: team-a
start: ask
parameters: {greeting: Hi}
nodes:
  ask:
    session.wait: {text: "{{flow.greeting}}, name?"}
    routing:
      - to: greet
        condition: input.text != ""
      - next: ask
  greet:
    templating.handlebars: {text: "Hello {{input.text}}"}
    telemetry: {span_name: greet, attributes: {a: b}}
    routing: reply
"""


def errors(source: str, **options) -> list[str]:
    _, diagnostics = check_flow(source, "f.ygtc", **options)
    return [str(d) for d in diagnostics if d.severity == "error"]


def test_a_valid_flow_loads_into_the_ir_with_positions() -> None:
    flow = load_flow(VALID, "sample.ygtc")
    assert (flow.id, flow.type, flow.start, flow.title) == ("sample", "messaging", "ask", "Sample")
    assert list(flow.nodes) == ["ask", "greet"]
    assert (flow.nodes["greet"].position.line, flow.nodes["greet"].position.col) == (15, 3)
    assert flow.nodes["ask"].routes[0].condition == 'input.text != ""'
    assert flow.nodes["ask"].routes[1].to == "ask"
    assert flow.parameters == {"greeting": "Hi"}


@pytest.mark.parametrize("path", reference_flow_files(), ids=lambda p: p.name)
def test_every_greentic_reference_flow_validates(path: Path) -> None:
    flow, diagnostics = check_flow(path.read_text(), str(path))
    assert flow is not None, [str(d) for d in diagnostics]
    assert all("nothing binds it to a component" in d.message for d in diagnostics
               if d.severity == "warning")


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.ygtc")), ids=lambda p: p.name)
def test_every_example_of_ours_validates_without_warnings(path: Path) -> None:
    flow, diagnostics = check_flow(path.read_text(), str(path))
    assert flow is not None and diagnostics == []


@pytest.mark.parametrize(("source", "expected"), [
    ("id: f\ntype: t\nnodes:\n  a: {x.y: {}, z.w: {}}\n",
     "f.ygtc:4:3: node 'a': a node needs exactly one operation key, found 2"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing:\n      - to: nope\n",
     "f.ygtc:4:3: node 'a': routes to unknown node 'nope'"),
    ("id: f\ntype: t\nstart: zz\nnodes:\n  a: {emit.response: {}}\n",
     "f.ygtc:3:1: start node 'zz' does not exist"),
    ("id: f\ntype: t\nnodes: [a]\n", "f.ygtc:3:1: 'nodes' must be a mapping of node id"),
    ("id: f\ntype: t\nnodes:\n  a: {emit.response: {}}\n  a: {emit.response: {}}\n",
     "f.ygtc:5:3: node 'a': duplicate node id 'a'"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing: 7\n",
     "f.ygtc:6:14: node 'a': routing must be 'out', 'reply', a node id or a list of routes"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing:\n      - {go: b}\n",
     "f.ygtc:7:9: node 'a': routing[0] has unknown key(s) ['go']"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing:\n      - {status: ok}\n",
     "f.ygtc:7:9: node 'a': routing[0] needs 'to', 'out: true' or 'reply: true'"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing:\n"
     "      - {out: true, condition: 'x ==== 1'}\n",
     "f.ygtc:7:9: node 'a': routing[0].condition 'x ==== 1': condition does not parse"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing:\n"
     "      - {out: true, condition: 'open(1)'}\n",
     "'Call' is not allowed in a condition"),
    ("id: f\ntype: t\nnodes:\n  a:\n    emit.response: {}\n    routing:\n"
     "      - {out: true, condition: 'x.__class__'}\n",
     "attribute '__class__' is not allowed"),
    ("id: f\ntype: t\nnodes:\n  a:\n    flow.call: {flow: other}\n",
     "f.ygtc:5:5: node 'a': flow.call refers to flow 'other', which is not in the pack"),
    ("id: f\ntype: t\nnodes:\n  a:\n    templating.handlebars: {text: '{{#each}}{{/if}}'}\n",
     "f.ygtc:5:5: node 'a': invalid handlebars template"),
    ("id: f\ntype: t\nnodes:\n  '1a': {emit.response: {}}\n",
     "f.ygtc:4:3: node id '1a' must match"),
    ("id: f\ntype: t\nnodes:\n  a: {questions: {questions: [{prompt: x}]}}\n",
     "node 'a': questions needs a list 'questions' of {id, prompt"),
    ("id: f\ntype: t\nnodes:\n  a: {emit.response: {}, timeout: {ms: -1}}\n",
     "node 'a': timeout must be {ms: <positive number>}"),
    ("id: f\ntype: t\nnodes:\n  a: {emit.response: {}, retry: {max_attempts: 99}}\n",
     "node 'a': retry must be {max_attempts: 1..10"),
    ("id: 5\ntype: t\nnodes:\n  a: {emit.response: {}}\n", "f.ygtc:1:1: 'id' must be a non-empty"),
    ("id: f\nnodes:\n  a: [unclosed\n", "f.ygtc:4:1: not valid YAML"),
    ("- just\n- a list\n", "f.ygtc:1:1: a flow must be a mapping"),
    ("id: f\nschema_version: two\nnodes:\n  a: {emit.response: {}}\n",
     "f.ygtc:2:1: 'schema_version' must be a positive integer"),
])
def test_each_mistake_is_reported_with_its_position(source: str, expected: str) -> None:
    found = errors(source, pack_flows={"f"})
    assert any(expected in line for line in found), found


@pytest.mark.parametrize(("source", "expected"), [
    ("id: f\ntype: t\nnodes:\n  a: {emit.response: {}}\n  b: {emit.response: {}}\n",
     "f.ygtc:5:3: node 'b': warning: node is unreachable from start node 'a'"),
    ("id: f\ntype: t\nnodes: {}\n", "f.ygtc:3:1: warning: no nodes: the flow ends at once"),
    ("id: f\ntype: t\n", "no nodes: the flow ends at once"),
])
def test_what_greentic_loads_too_is_only_a_warning(source: str, expected: str) -> None:
    flow, diagnostics = check_flow(source, "f.ygtc")
    assert flow is not None
    assert [str(d) for d in diagnostics if d.severity == "warning" and expected in str(d)]


def test_greentic_spellings_of_built_in_shapes_load() -> None:
    source = ("id: f\ntype: messaging\nnodes:\n"
              "  ask: {questions: {fields: [{id: n, prompt: 'Name?', type: string}]},"
              " routing: [{to: call}]}\n"
              "  call: {flow.call: {flow_id: parameters.target}, in_map: {}, routing: out}\n")
    flow, diagnostics = check_flow(source, "f.ygtc", pack_flows={"f"})
    assert flow is not None, diagnostics
    assert set(flow.nodes) == {"ask", "call"}


def test_all_errors_are_reported_not_just_the_first() -> None:
    with pytest.raises(FlowValidationError) as caught:
        load_flow("id: f\nnodes:\n  a:\n    routing: [{to: x}]\n    emit.response: {}\n"
                  "  b: {x.y: {}, z.z: {}}\n", "f.ygtc")
    assert len(caught.value.diagnostics) == 2
    assert "(and 1 more)" in str(caught.value)
    assert (caught.value.file, caught.value.line, caught.value.node) == ("f.ygtc", 3, "a")


def test_unbound_operations_warn_alone_and_fail_inside_a_pack() -> None:
    source = "id: f\ntype: t\nnodes:\n  a: {lookup: {q: 1}}\n"
    flow, diagnostics = check_flow(source, "f.ygtc")
    assert flow is not None and [d.severity for d in diagnostics] == ["warning"]
    assert errors(source, strict_bindings=True) == [
        "f.ygtc:4:7: node 'a': operation 'lookup' is not built in, and nothing binds it to a "
        "component (a pack or a .resolve.json sidecar must)"]
    assert errors(source, strict_bindings=True, bindings={"a": "acme-lookup"}) == []
    assert errors(source, components={"acme-lookup": ["search"]}) == [
        "f.ygtc:4:7: node 'a': operation 'lookup' is not built in, and no component of the "
        "pack offers it"]


def test_components_are_called_by_name_as_greentic_resolves_them() -> None:
    source = ("id: f\ntype: messaging\nnodes:\n"
              "  echo: {ai.greentic.component-echo: {operation: messaging.send, text: hi},"
              " routing: [{to: hello}]}\n"
              "  hello: {handle_message: {input: x}, routing: [{to: render}]}\n"
              "  render: {render_text: {}, operation: text, routing: out}\n")
    components = {"ai.greentic.component-echo": ["messaging.send"],
                  "ai.greentic.fixture": ["handle_message"], "ai.greentic.qa": ["render_text"]}
    flow, diagnostics = check_flow(source, "f.ygtc", components=components)
    assert flow is not None, [str(d) for d in diagnostics]
    assert flow.bindings == {"echo": "ai.greentic.component-echo",
                             "hello": "ai.greentic.fixture", "render": "ai.greentic.qa"}
    assert [flow.nodes[n].operation for n in ("echo", "hello", "render")] == [
        "messaging.send", "handle_message", "text"]
    # a sidecar's binding decides for a bare operation; a dotted one must agree with it
    flow, _ = check_flow(source, "f.ygtc", components={**components, "other": ["render_text"]},
                         bindings={"render": "other"})
    assert flow is not None and flow.bindings["render"] == "other"
    assert errors(source, components=components, bindings={"echo": "ai.greentic.qa"}) == [
        "f.ygtc:4:10: node 'echo': calls component 'ai.greentic.component-echo', but its "
        "sidecar binds 'ai.greentic.qa'"]


def test_a_name_that_resolves_nowhere_in_the_pack_is_an_error_with_its_position() -> None:
    source = "id: f\ntype: messaging\nnodes:\n  a: {acme.lookup: {q: 1}}\n  b: {go: {}}\n"
    assert errors(source, components={"x": ["go"], "y": ["go"]}) == [
        "f.ygtc:4:7: node 'a': calls component 'acme.lookup', which is not in the pack "
        "(components: ['x', 'y'])",
        "f.ygtc:5:7: node 'b': operation 'go' is offered by several components ['x', 'y']; "
        "a .resolve.json sidecar must say which one"]


def test_yes_and_no_stay_strings_as_in_yaml_1_2() -> None:
    flow = load_flow("id: f\ntype: t\nnodes:\n  a: {emit.response: {text: yes, buttons: [No, on]}"
                     ", routing: out}\n", "f.ygtc")
    assert flow.nodes["a"].args == {"text": "yes", "buttons": ["No", "on"]}


def test_an_alias_bomb_is_refused_instead_of_expanded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    assert any("alias bomb" in line for line in errors(bomb))


def test_the_resolve_sidecar_binds_nodes_to_components(tmp_path: Path) -> None:
    sidecar = read_sidecar(REFERENCE_FLOWS / "telco-main.ygtc.resolve.json")
    assert sidecar.flow == "main.ygtc"
    assert sidecar.nodes["present_telco"].component() == \
        "../components/component-telco-present/component.wasm"
    bad = tmp_path / "x.ygtc.resolve.json"
    bad.write_text(json.dumps({"nodes": {"a": {"source": "nope"}}}))
    with pytest.raises(ValueError, match=r"x\.ygtc\.resolve\.json.*\$\.nodes\[\.\.\.\]\.source"):
        read_sidecar(bad)


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(st.integers(0, 20), max_size=5), action=MUTATIONS, value=YAML_VALUES)
def test_mutated_valid_flows_end_in_an_ir_or_a_validation_error(path, action, value) -> None:
    doc = yaml.safe_load(VALID)
    mutated = yaml.safe_dump(mutate(doc, path, action, value), allow_unicode=True)
    try:
        load_flow(mutated, "m.ygtc")
    except FlowValidationError as exc:
        assert exc.diagnostics and all(d.file == "m.ygtc" and d.line >= 1
                                       for d in exc.diagnostics)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(
    lambda b: b.decode("utf-8", "replace")))
def test_random_text_ends_in_an_ir_or_a_validation_error(text: str) -> None:
    try:
        load_flow(text, "r.ygtc")
    except FlowValidationError:
        pass
