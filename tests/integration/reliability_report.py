"""Render the fault suite's figures into docs/reliability.md, between its markers.

    python -m tests.integration.reliability_report [--mode full|reduced] [--figures FILE]

Takes the latest row of each fault for the mode (default: full if there is any, else reduced)
from .greentic/test-artifacts/reliability.json (written by tests/integration/test_faults.py).
"""

import argparse
import json
import sys
from pathlib import Path

from tests.integration.load import FIGURES_FILE, ROOT

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
COLUMNS = (("fault", "fault"), ("messages", "messages"), ("answered", "answered"),
           ("lost", "lost"), ("duplicated", "duplicated"), ("reordered", "reordered"),
           ("wrong_turns", "wrong turns"), ("dead_letters", "dead letters"),
           ("recovery_s", "recovery (s)"), ("max_gap_s", "longest silence (s)"),
           ("handover_s", "partitions owned again (s)"), ("webhook_retries", "webhook retries"))


def table(rows: list[dict]) -> str:
    """The latest row per fault, in the order the faults first ran, as a Markdown table."""
    latest: dict[str, dict] = {}
    for row in rows:
        latest[row["fault"]] = row
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join("—" if row.get(key) is None else str(row[key])
                                for key, _ in COLUMNS) + " |"
              for row in latest.values()]
    stamp = max(row["at"] for row in latest.values())
    chats = {row["conversations"] for row in latest.values()}
    return "\n".join(lines) + (f"\n\n{'/'.join(map(str, sorted(chats)))} chats; "
                               f"last run {stamp}.")


def render(document: str, rows: list[dict]) -> str:
    """`document` with the text between the markers replaced by the table of `rows`."""
    head, found, rest = document.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise SystemExit(f"{DOC}: markers {BEGIN} … {END} not found")
    return f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=FIGURES_FILE)
    parser.add_argument("--mode", choices=("full", "reduced"))
    args = parser.parse_args(argv)
    if not args.figures.exists():
        print(f"{args.figures} does not exist: run `make chaos` first", file=sys.stderr)
        return 1
    rows = json.loads(args.figures.read_text())
    mode = args.mode or ("full" if any(r["mode"] == "full" for r in rows) else "reduced")
    rows = [r for r in rows if r["mode"] == mode]
    if not rows:
        print(f"no {mode} figures in {args.figures}", file=sys.stderr)
        return 1
    DOC.write_text(render(DOC.read_text(), rows))
    print(f"{DOC}: {len({r['fault'] for r in rows})} faults ({mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
