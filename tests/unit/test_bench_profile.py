"""The profile summary names where a service's busy samples went, ignoring waiting threads."""

from pathlib import Path

from greentic.bench.profile import hot_functions


def test_hot_functions_share_busy_samples_and_skip_idle_threads_and_outer_frames(
        tmp_path: Path) -> None:
    collapsed = tmp_path / "svc.txt"
    collapsed.write_text(
        "main;run;handle;decode 30\n"
        "main;run;handle;publish 50\n"
        "main;run;poll 20\n"
        "thread;tick;Condition.wait (threading.py:331) 500\n")
    hot = dict((frame, share) for share, frame in hot_functions(collapsed))
    assert hot == {"handle": 0.8, "publish": 0.5, "decode": 0.3, "poll": 0.2}
