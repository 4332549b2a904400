"""The figures table of docs/reliability.md is rendered from the fault suite's rows."""

from tests.integration.reliability_report import BEGIN, END, render


def row(fault: str, lost: int, at: str) -> dict:
    return {"fault": fault, "conversations": 100, "messages": 2000, "answered": 2000 - lost,
            "lost": lost, "duplicated": 0, "reordered": 0, "wrong_turns": 0, "dead_letters": 0,
            "recovery_s": 1.5, "max_gap_s": 0.5, "webhook_retries": 0, "mode": "full", "at": at}


def test_the_latest_row_of_each_fault_replaces_what_was_between_the_markers() -> None:
    document = f"# R\n\n{BEGIN}\nold table\n{END}\n\nafter\n"
    rendered = render(document, [row("a", 5, "2026-01-01"), row("b", 0, "2026-01-02"),
                                 row("a", 0, "2026-01-03")])
    assert rendered.startswith(f"# R\n\n{BEGIN}\n| fault | messages |")
    assert rendered.endswith(f"{END}\n\nafter\n")
    assert "old table" not in rendered
    lines = [line for line in rendered.splitlines() if line.startswith("| a ") or
             line.startswith("| b ")]
    assert lines == ["| a | 2000 | 2000 | 0 | 0 | 0 | 0 | 0 | 1.5 | 0.5 | 0 |",
                     "| b | 2000 | 2000 | 0 | 0 | 0 | 0 | 0 | 1.5 | 0.5 | 0 |"]
    assert "last run 2026-01-03" in rendered
