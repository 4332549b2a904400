"""PNG charts of bench runs (matplotlib, no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from greentic.bench.e2e import Result


def latency_vs_load(rows: list[tuple[float, Result, Result]], path: Path, title: str) -> None:
    """p50/p95/p99 of the baseline and the platform against the offered rate."""
    fig, ax = plt.subplots(figsize=(8, 5))
    rates = [rate for rate, _, _ in rows]
    for label, pick, color in (("baseline", 1, "tab:gray"), ("greentic", 2, "tab:green")):
        for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
            ax.plot(rates, [row[pick].percentile(q) for row in rows], style, color=color,
                    marker="o", label=f"{label} p{round(q * 100)}")
    ax.set_xlabel("offered load (messages/s)")
    ax.set_ylabel("send → reply latency (ms)")
    ax.set_yscale("log")
    _finish(fig, ax, title, path, ncol=2)


def scaling(results: list[tuple[int, Result]], path: Path, title: str,
            machine: float | None = None) -> None:
    """Messages/s against the number of executors, with the ideal line and (`machine`: the
    speed-up the machine itself gives the most processes) what these cores allow."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    counts = [count for count, _ in results]
    rates = [result.rate for _, result in results]
    ax.plot(counts, rates, "o-", color="tab:green", label="measured")
    ax.plot(counts, [rates[0] * count / counts[0] for count in counts], "--", color="tab:gray",
            label="linear")
    if machine is not None:
        ax.plot([counts[0], counts[-1]], [rates[0], rates[0] * machine], ":",
                color="tab:orange", label=f"the machine's own speed-up ({machine:.2f}x)")
    for count, rate in zip(counts, rates, strict=True):
        ax.annotate(f"{rate:,.{1 if rate < 100 else 0}f} msg/s ({rate / rates[0]:.2f}x)",
                    (count, rate),
                    textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.set_xlabel("executor processes")
    ax.set_ylabel("messages/s")
    ax.set_xticks(counts)
    ax.set_ylim(bottom=0)
    _finish(fig, ax, title, path)


def rss_over_time(samples: dict[str, list[tuple[float, float]]], path: Path, title: str) -> None:
    """Each process's resident memory (MiB) over the run's minutes."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, points in sorted(samples.items()):
        ax.plot([t / 60 for t, _ in points], [rss for _, rss in points], label=name)
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    _finish(fig, ax, title, path)


def _finish(fig: plt.Figure, ax: plt.Axes, title: str, path: Path, ncol: int = 1) -> None:
    """Title, grid and legend, then the PNG."""
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=ncol)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
