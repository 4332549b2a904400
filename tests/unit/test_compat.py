"""`greentic compat DIR` on a real Greentic application and on files made to fail."""

from pathlib import Path

from click.testing import CliRunner

from greentic.cli.main import cli
from tests.greentic_files import greentic_file


def compat(directory: Path, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["compat", str(directory), *args])
    return result.exit_code, result.output.splitlines()


def test_greentics_echo_application_is_accepted_file_by_file() -> None:
    echo = greentic_file("greenticai/greentic-integration", "crates/test-packs/echo-pack")
    code, lines = compat(echo)
    assert code == 0, lines
    assert lines[-1] == "flows 1/1, packs 2/2, components 1/1"
    assert "accepted flow      flows/main.ygtc: schema_version 2, 1 nodes" in lines
    assert "accepted pack      pack.yaml: pack source, 1 components (hosted), 1 flows" in lines
    assert any(line.startswith("accepted pack      dist/echo-pack.gtpack: Greentic (current "
                               "layout), 1 components (hosted), 1 flows, unsigned")
               for line in lines)


def test_refusals_name_the_file_and_the_reason_and_nothing_crashes(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "two_ops.ygtc").write_text(
        "id: x\ntype: messaging\nnodes:\n  a: {x.y: {}, z.w: {}}\n")
    (tmp_path / "flows" / "binary.ygtc").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "broken.gtpack").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pack.yaml").write_text(
        "pack_id: app\nversion: 0.1.0\nkind: application\npublisher: me\n"
        "dependencies: []\ncomponents:\n- {id: c, version: 0.1.0, world: 'root:component/root',"
        " profiles: {}, capabilities: {wasi: {}, host: {}}, wasm: components/c.wasm}\n")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "skipped.ygtc").write_text("not: [a flow")  # build output: skipped
    code, lines = compat(tmp_path, "--refused-only")
    assert code == 1
    assert lines[-1] == "flows 0/2, packs 0/2, components 0/0"
    assert "refused  flow      flows/two_ops.ygtc: flows/two_ops.ygtc:4:3: node 'a': a node " \
           "needs exactly one operation key, found 2: ['x.y', 'z.w']" in lines
    assert any(line.startswith("refused  flow      flows/binary.ygtc: ") for line in lines)
    assert any(line.startswith("refused  pack      broken.gtpack: not a ZIP archive")
               for line in lines), lines
    assert any(line.startswith("refused  pack      app/pack.yaml: ") and "components[0] (c)"
               in line and "cannot read" in line for line in lines), lines
