"""`greentic flow validate | graph | run` as a user runs them."""

from pathlib import Path

from click.testing import CliRunner

from greentic.cli.main import cli
from tests.reference import REFERENCE_FLOWS, reference_flow_files

DEMO_FLOWS = Path(__file__).parents[2] / "examples" / "demo" / "pack" / "flows"


def invoke(*args: str):
    return CliRunner().invoke(cli, ["flow", *args])


def test_validate_passes_good_flows_and_prints_warnings() -> None:
    result = invoke("validate", *map(str, reference_flow_files()))
    assert result.exit_code == 0, result.output
    assert "hello.ygtc: ok (1 nodes)" in result.output
    assert "warning: operation 'render_text' is not built in" in result.output


def test_validate_fails_with_file_line_col_node_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ygtc"
    bad.write_text("id: bad\ntype: messaging\nnodes:\n  a:\n    emit.response: {}\n"
                   "    routing: [{to: ghost}]\n")
    result = invoke("validate", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:4:3: node 'a': routes to unknown node 'ghost'" in result.output


def test_validate_strict_turns_unbound_operations_into_errors() -> None:
    result = invoke("validate", "--strict", str(REFERENCE_FLOWS / "hello_with_component.ygtc"))
    assert result.exit_code == 1


def test_graph_in_three_formats(tmp_path: Path) -> None:
    flow = str(DEMO_FLOWS / "faq.ygtc")
    mermaid = invoke("graph", flow)
    assert mermaid.exit_code == 0
    assert "classify -->|'hour' in input.normalized" in mermaid.output
    dot = invoke("graph", "--format", "dot", flow)
    assert '"hours" -> __end__;' in dot.output
    svg_file = tmp_path / "faq.svg"
    assert invoke("graph", "--format", "svg", flow, "-o", str(svg_file)).exit_code == 0
    svg = svg_file.read_text()
    assert svg.startswith("<svg") and svg.count("<rect") == 6  # 5 nodes + end


def test_run_holds_a_multi_turn_conversation_locally() -> None:
    result = invoke("run", str(DEMO_FLOWS / "signup.ygtc"), "-i", "hi", "-i", "Ada", "-i", "40",
                    "-i", "Free", "-i", "yes")
    assert result.exit_code == 0, result.output
    assert "bot> Nice to meet you, Ada. How old are you?" in result.output
    assert "(waiting at node 'ask_age')" in result.output
    assert "bot> Done! Welcome aboard, Ada." in result.output
    assert result.output.rstrip().endswith("(flow ended)")


def test_run_reports_a_broken_flow_readably(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ygtc"
    bad.write_text("id: bad\nnodes: [a, b]\n")
    result = invoke("run", str(bad), "-i", "x")
    assert result.exit_code == 1
    assert "'nodes' must be a mapping of node id" in result.output
