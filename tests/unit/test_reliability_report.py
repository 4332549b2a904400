"""The fault suite's figures: how recovery is measured, and the table in docs/reliability.md."""

from tests.integration.load import recovery
from tests.integration.reliability_report import BEGIN, END, render


def row(fault: str, lost: int, at: str) -> dict:
    return {"fault": fault, "conversations": 100, "messages": 2000, "answered": 2000 - lost,
            "lost": lost, "duplicated": 0, "reordered": 0, "wrong_turns": 0, "dead_letters": 0,
            "recovery_s": 1.5, "max_gap_s": 0.5, "webhook_retries": 0, "mode": "full", "at": at}


def test_the_latest_row_of_each_fault_replaces_what_was_between_the_markers() -> None:
    document = f"# R\n\n{BEGIN}\nold table\n{END}\n\nafter\n"
    rendered = render(document, [row("a", 5, "2026-01-01"),
                                 {**row("b", 0, "2026-01-02"), "handover_s": 3.2},
                                 row("a", 0, "2026-01-03")])
    assert rendered.startswith(f"# R\n\n{BEGIN}\n| fault | messages |")
    assert rendered.endswith(f"{END}\n\nafter\n")
    assert "old table" not in rendered
    lines = [line for line in rendered.splitlines() if line.startswith("| a ") or
             line.startswith("| b ")]
    assert lines == ["| a | 2000 | 2000 | 0 | 0 | 0 | 0 | 0 | 1.5 | 0.5 | — | 0 |",
                     "| b | 2000 | 2000 | 0 | 0 | 0 | 0 | 0 | 1.5 | 0.5 | 3.2 | 0 |"]
    assert "last run 2026-01-03" in rendered


def test_recovery_is_when_replies_come_at_half_the_rate_before_the_fault_again() -> None:
    steady = [i / 10 for i in range(100)]  # 10 replies/s for 10 s
    assert recovery(steady, 5.0, until=10) == 0.0
    silent = [t for t in steady if not 5 <= t < 7]  # nothing for 2 s, then 10/s again
    assert round(recovery(silent, 5.0, until=10), 2) == 2.4  # 5 replies in the second to 7.4 s
    later = [t for t in steady if not 6 <= t < 8]  # the silence starts a second after the fault
    assert round(recovery(later, 5.0, until=10), 2) == 3.4
