"""Greentic's own flow files: the copies in tests/fixtures/greentic-examples (a clean clone has
them), plus any further ones in the team's reference folder beside the checkout
(`../shared/greentic-examples`), so a file added there is checked too."""

from pathlib import Path

REFERENCE_FLOWS = Path(__file__).parent / "fixtures" / "greentic-examples" / "flows"
_BESIDE = Path(__file__).parents[2] / "shared" / "greentic-examples" / "flows"


def reference_flow_files() -> list[Path]:
    """Every reference `.ygtc`, one per file name (the in-repo copy first)."""
    found = {path.name: path for path in sorted(_BESIDE.glob("*.ygtc"))}
    found.update({path.name: path for path in sorted(REFERENCE_FLOWS.glob("*.ygtc"))})
    return [found[name] for name in sorted(found)]
