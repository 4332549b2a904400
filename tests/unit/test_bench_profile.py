"""The profile summary names where a service's busy samples went, ignoring waiting threads."""

from pathlib import Path

from greentic.bench.profile import hot_functions


def test_hot_functions_share_busy_samples_below_the_loop_and_skip_idle_threads(
        tmp_path: Path) -> None:
    loop = "main;Runner.run (asyncio/runners.py:118)"
    collapsed = tmp_path / "svc.txt"
    collapsed.write_text(
        f"{loop};handle;decode 30\n"
        f"{loop};handle;publish 50\n"
        f"{loop};poll 10\n"
        "_bootstrap;Thread.run (threading.py:982);flush 10\n"
        "_bootstrap;Thread.run (threading.py:982);tick;Condition.wait (threading.py:331) 500\n")
    hot = dict((frame, share) for share, frame in hot_functions(collapsed))
    assert hot == {"handle": 0.8, "publish": 0.5, "decode": 0.3, "poll": 0.1, "flush": 0.1}
