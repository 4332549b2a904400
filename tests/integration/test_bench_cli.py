"""`greentic bench e2e|load|scale` as a user runs them: a baseline and the five services in one run,
a table of ratios, py-spy profiles and a PNG chart."""

import re
import subprocess
import sys
from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "greentic", "bench", *args],
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_e2e_prints_ratios_against_the_baseline_and_profiles_every_service(
        tmp_path: Path) -> None:
    out = bench("e2e", "--conversations", "3", "--messages", "6", "--profile",
                str(tmp_path / "profile"))
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()
            if line.startswith("│")]
    cells = next(row for row in rows
                 if row[0] == "greentic, 1 executor(s)" and row[1].isdigit())
    assert cells[1] == "18"  # every message answered
    assert float(cells[3]) > 0  # throughput as a ratio of the baseline's
    profiles = tmp_path / "profile" / "executors-1"
    for name in ("ingress", "router", "executor-0", "egress", "pack-loader"):
        assert f"{name}: where the CPU went" in out
    sampled = [p for p in profiles.glob("*.txt") if p.stat().st_size > 0]
    assert sampled, "py-spy recorded none of the services"


def test_e2e_repeated_alternates_rounds_and_prints_the_median_ratio() -> None:
    out = bench("e2e", "--conversations", "2", "--messages", "3", "--repeat", "2")
    runs = [line.split("│")[1].strip() for line in out.splitlines()
            if line.startswith("│") and line.split("│")[2].strip().isdigit()]
    assert runs == ["baseline (4 streams, 3 relays) #1", "greentic, 1 executor(s) #1",
                    "baseline (4 streams, 3 relays) #2", "greentic, 1 executor(s) #2"], out
    assert re.search(r"1 executor\(s\), median of 2 alternating rounds: [\d.]+x the "
                     r"baseline's msg/s \([\d.]+ to [\d.]+\), p99 [\d.]+x", out), out


def test_load_measures_each_offered_rate_and_draws_the_chart(tmp_path: Path) -> None:
    chart = tmp_path / "load.png"
    out = bench("load", "--rates", "10,20", "--seconds", "1", "--conversations", "2",
                "--plot", str(chart))
    measured = [line.split("│")[1].strip() for line in out.splitlines()
                if line.startswith("│") and line.split("│")[1].strip().isdigit()]
    assert measured == ["10", "20"], out
    assert chart.read_bytes().startswith(PNG_MAGIC)


def test_scale_compares_executor_counts_with_what_the_machine_itself_allows(
        tmp_path: Path) -> None:
    chart = tmp_path / "scaling.png"
    out = bench("scale", "--conversations", "2", "--messages", "3", "--spin", "1000",
                "--plot", str(chart))
    answered = {row[0]: row[1] for row in (
        [cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()
        if line.startswith("│")) if row[0].startswith("greentic,") and row[1].isdigit()}
    assert answered == {"greentic, 1 executor(s)": "6", "greentic, 2 executor(s)": "6"}, out
    speedups = re.search(r"scaling 1 → 2 executors: ([\d.]+)x; the machine itself: ([\d.]+)x",
                         out)
    assert speedups is not None, out
    assert all(float(figure) > 0 for figure in speedups.groups())
    assert chart.read_bytes().startswith(PNG_MAGIC)


def test_providers_compares_the_built_in_channel_and_its_component_in_one_run() -> None:
    out = bench("providers", "--calls", "5").splitlines()
    names = [line[:52].strip() for line in out[1:5]]
    assert names == ["ingress: built-in Telegram", "ingress: Telegram provider component",
                     "egress: built-in Telegram (loopback POST)",
                     "egress: Telegram provider component (loopback POST)"]
    assert [line.split()[-1] for line in out[1:5:2]] == ["1.00x", "1.00x"]
    assert re.fullmatch(r"component overhead per webhook: -?\d+\.\d\d ms \(p50\)", out[5])
