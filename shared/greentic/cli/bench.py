"""`greentic bench …`: measurements on this machine, printed as one table."""

import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
import nats
from rich.console import Console
from rich.table import Table

from greentic.bench.e2e import Result
from greentic.errors import StoreUnavailable
from greentic.flow.engine import FlowEngine
from greentic.flow.loader import load_flow
from greentic.hosting.launcher import free_port, start_nats, stop_processes
from greentic.services.executor import TurnApplier
from greentic.session.kv import JetStreamRecords
from greentic.session.model import Session, SessionKey
from greentic.session.records import MemoryRecords, Records
from greentic.session.redis_store import RedisRecords
from greentic.session.store import RecordSessionStore
from greentic.types.envelope import Envelope, FlowRef
from greentic.types.tenant import TenantCtx

BENCH_FLOW = """\
id: counter
type: messaging
start: count
nodes:
  count:
    templating.handlebars:
      text: "turn {{session.turn}}: {{in.input.text}}"
    routing: reply
"""
CTX = TenantCtx("bench", "acme", "support")


@click.group()
def bench() -> None:
    """Measure parts of the platform on this machine."""


async def _rate(ops: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> float:
    """Operations per second running `op(i)` for i < ops with `concurrency` in flight."""
    started = time.perf_counter()
    if concurrency == 1:
        for i in range(ops):
            await op(i)
    else:
        async def lane(start: int) -> None:
            for i in range(start, ops, concurrency):
                await op(i)

        await asyncio.gather(*(lane(n) for n in range(concurrency)))
    return ops / (time.perf_counter() - started)


async def _measure(records: Records, ops: int, concurrency: int) -> list[float]:
    store = RecordSessionStore(records)
    keys = [SessionKey(CTX, "webchat", f"c{n}") for n in range(max(concurrency, 64))]
    revisions = {key: await store.create(key, Session(turns=0, state={"name": "Ada"}))
                 for key in keys}
    results = []
    for lanes in (1, concurrency):
        results.append(await _rate(ops, lanes, lambda i: store.get(keys[i % len(keys)])))

    for lanes in (1, concurrency):
        async def update(i: int, lanes: int = lanes) -> None:
            key = keys[i % lanes]  # one key per lane: CAS on the revision just written
            revisions[key] = await store.update(key, Session(turns=i), revisions[key])

        results.append(await _rate(ops, lanes, update))
    # one turn of a real flow, bare vs. with the session read + CAS write around it
    engine = FlowEngine()
    prepared = engine.prepare(load_flow(BENCH_FLOW, "bench.ygtc"), "bench")
    applier = TurnApplier(engine, store, epoch="bench")
    key = SessionKey(CTX, "webchat", "turns")
    turns = max(200, ops // 4)

    def envelope(i: int) -> Envelope:
        return Envelope(id=f"m{i}", ctx=CTX, channel="webchat", provider="webchat",
                        conversation="turns", text=f"hello {i}", flow=FlowRef("bench", "counter"))

    bare = await _rate(turns, 1, lambda i: engine.run_turn(prepared, envelope(i),
                                                          session={"turn": i}))
    with_session = await _rate(turns, 1, lambda i: applier.apply(key, prepared, envelope(i),
                                                                 i + 1))
    results += [1e6 / bare, 1e6 / with_session, 1e6 / with_session - 1e6 / bare]
    return results


async def _bench(nats_url: str, redis_url: str, ops: int, concurrency: int) -> Table:
    table = Table(title=f"session store, {ops} ops per cell, {os.cpu_count()} cores")
    for column in ("backend", "get/s (1)", f"get/s ({concurrency})", "CAS update/s (1)",
                   f"CAS update/s ({concurrency})", "turn µs, no session",
                   "turn µs, read+CAS", "session cost µs/turn"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    prefix = f"greentic-bench-{uuid.uuid4().hex[:8]}"
    backends: list[tuple[str, Callable[[], Awaitable[Records]]]] = [
        ("jetstream KV", lambda: JetStreamRecords.open(js, bucket, 600.0)),
        ("redis", lambda: RedisRecords.open(redis_url, prefix, "sessions", 600.0)),
        ("memory", lambda: _memory()),
    ]
    try:
        for name, open_records in backends:
            try:
                records = await open_records()
            except StoreUnavailable as exc:
                table.add_row(name, *(["n/a"] * 7))
                click.echo(f"{name}: {exc}", err=True)
                continue
            try:
                figures = await _measure(records, ops, concurrency)
            finally:
                if isinstance(records, RedisRecords):
                    keys = [k async for k in records.client.scan_iter(match=f"{prefix}*")]
                    if keys:
                        await records.client.delete(*keys)
                await records.close()
            table.add_row(name, *(f"{value:,.0f}" for value in figures))
    finally:
        await js.delete_key_value(bucket)
        await nc.close()
    return table


async def _memory() -> Records:
    return MemoryRecords(600.0)


@bench.command()
@click.option("--ops", default=3000, show_default=True, help="Operations per measurement.")
@click.option("--concurrency", default=32, show_default=True, help="Operations in flight.")
@click.option("--nats-url", help="Use this NATS (default: start a nats-server from the wheel).")
@click.option("--redis-url", default=lambda: os.environ.get("GREENTIC_REDIS_URL",
                                                            "redis://127.0.0.1:6379/0"),
              show_default="GREENTIC_REDIS_URL or local 6379")
def sessions(ops: int, concurrency: int, nats_url: str | None, redis_url: str) -> None:
    """Session ops/s per backend (get, CAS update) and a session's cost per turn, one table."""
    tmp = Path(tempfile.mkdtemp(prefix="greentic-bench-"))
    server = None
    try:
        if nats_url is None:
            port = free_port()
            server = start_nats(tmp / "nats", port, tmp / "nats.log")
            nats_url = f"nats://127.0.0.1:{port}"
        table = asyncio.run(_bench(nats_url, redis_url, ops, concurrency))
    finally:
        if server is not None:
            stop_processes([server], timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    Console(width=160).print(table)


def _e2e_table(rounds: list[tuple[Result, list[Result]]], title: str) -> Table:
    """One row per run; ratios against the baseline of the same round."""
    table = Table(title=title)
    for column in ("run", "messages", "msg/s", "vs baseline", "p50 ms", "p95 ms", "p99 ms",
                   "p99 vs baseline", "max lag"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for baseline, results in rounds:
        for result in [baseline, *results]:
            table.add_row(result.name, str(result.messages), f"{result.rate:,.0f}",
                          f"{result.rate / baseline.rate:.2f}",
                          *(f"{result.percentile(q):.1f}" for q in (0.5, 0.95, 0.99)),
                          f"{result.percentile(0.99) / baseline.percentile(0.99):.2f}",
                          "" if result.lag_max is None else f"{result.lag_max:,}")
    return table


def _process_table(results: list[Result]) -> Table:
    table = Table(title="per process (CPU seconds during the run, RSS at its end)")
    for column in ("run", "process", "CPU s", "CPU µs/msg", "RSS MiB"):
        table.add_column(column, justify="right" if column not in ("run", "process") else "left")
    for result in results:
        for name, (cpu, rss) in sorted(result.processes.items()):
            table.add_row(result.name, name, f"{cpu:.2f}",
                          f"{cpu / result.messages * 1e6:,.0f}", f"{rss:.0f}")
    return table


class _Bench:
    """One bench session: its own nats-server, then baseline and platform runs on it."""

    def __init__(self, console: Console) -> None:
        from greentic.bench import e2e

        self.e2e = e2e
        self.console = console
        self.root = e2e.workdir()
        self.nats = start_nats(self.root / "nats", port := free_port(), self.root / "nats.log")
        self.url = f"nats://127.0.0.1:{port}"
        self.runs = 0

    def close(self) -> None:
        stop_processes([self.nats], 10)
        shutil.rmtree(self.root, ignore_errors=True)

    async def baseline(self, messages: int, rate: float | None) -> Result:
        """The raw-NATS pipeline of the same shape, `messages` at `rate` (or at once)."""
        await self.e2e.create_baseline_streams(self.url)
        relays = self.e2e.start_relays(self.url)
        try:
            await asyncio.sleep(1.0)  # relays bind their consumers
            await self.e2e.run_baseline(self.url, 20, None, relays)  # warm: connections, caches
            return await self.e2e.run_baseline(self.url, messages, rate, relays)
        finally:
            stop_processes(list(relays.values()), 5)

    async def platform(self, executors: int, conversations: int, messages: int,
                       rate: float | None, *, spin: int = 0, wasm_threads: int | None = None,
                       profile: Path | None = None, rss_every_s: float | None = None) -> Result:
        """The five services (fresh processes) driven by WebChat conversations."""
        from greentic.bench.profile import hot_functions, start_profilers, stop_profilers

        self.runs += 1
        http_port = free_port()
        platform = self.e2e.start_platform(self.root / f"run{self.runs}", self.url, executors,
                                           http_port, spin=spin, wasm_threads=wasm_threads)
        base = f"http://127.0.0.1:{http_port}"
        try:
            await self.e2e.run_platform(base, 4, 3, None, platform)  # warm: compile, connect
            profilers = start_profilers(platform, profile) if profile else {}
            try:
                result = await self.e2e.run_platform(base, conversations, messages, rate,
                                                     platform, self.url, rss_every_s)
            finally:
                stop_profilers(profilers)
        finally:
            stop_processes(list(platform.values()), 20)
        result.name = f"greentic, {executors} executor(s)"
        if profile:
            for name in sorted(platform):
                self.console.print(f"[bold]{name}[/bold]: where the CPU went "
                                   f"({profile / (name + '.txt')})")
                for share, frame in hot_functions(profile / f"{name}.txt", top=10):
                    self.console.print(f"  {share:6.1%}  {frame}")
        return result


def _machine() -> str:
    import platform as host

    return (f"machine: {host.machine()}, {os.cpu_count()} cores, Python "
            f"{host.python_version()}, load average {os.getloadavg()[0]:.2f} at the start")


async def _e2e(conversations: int, messages: int, executors: list[int], rate: float | None,
               spin: int, profile: Path | None, plot: Path | None, console: Console,
               repeat: int = 1) -> None:
    bench = _Bench(console)
    try:
        console.print(_machine())
        total = conversations * messages
        rounds: list[tuple[Result, list[Result]]] = []
        for number in range(1, repeat + 1):
            suffix = f" #{number}" if repeat > 1 else ""
            console.print(f"baseline{suffix}: {total} messages …")
            baseline = await bench.baseline(total, rate)
            baseline.name += suffix
            results = []
            for count in executors:
                console.print(f"greentic with {count} executor(s){suffix}: {conversations} "
                              f"conversations x {messages} messages, component spin {spin} …")
                results.append(await bench.platform(
                    count, conversations, messages, rate, spin=spin,
                    wasm_threads=1 if len(executors) > 1 else None,
                    profile=profile / f"executors-{count}{suffix.replace(' #', '-')}"
                    if profile else None))
                results[-1].name += suffix
            rounds.append((baseline, results))
        mode = f"offered at {rate:g} msg/s" if rate else "as fast as possible"
        console.print(_e2e_table(rounds, f"end to end, {mode}"))
        console.print(_process_table([run for baseline, results in rounds
                                      for run in (baseline, *results)]))
        if repeat > 1:
            for index, count in enumerate(executors):
                ratios = [results[index].rate / baseline.rate for baseline, results in rounds]
                tails = [results[index].percentile(0.99) / baseline.percentile(0.99)
                         for baseline, results in rounds]
                console.print(f"{count} executor(s), median of {repeat} alternating rounds: "
                              f"{statistics.median(ratios):.2f}x the baseline's msg/s "
                              f"({min(ratios):.2f} to {max(ratios):.2f}), p99 "
                              f"{statistics.median(tails):.2f}x the baseline's")
        if len(results) > 1:
            machine = _machine_speedup(bench, spin, executors[-1])
            console.print(f"scaling 1 → {executors[-1]} executors: "
                          f"{results[-1].rate / results[0].rate:.2f}x; the machine itself: "
                          f"{machine:.2f}x ({executors[-1]} processes calling the component "
                          "bare, no platform)")
            if plot is not None:
                from greentic.bench.plots import scaling

                scaling(list(zip(executors, results, strict=True)), plot,
                        f"executor scaling, component spin {spin:,} ({os.cpu_count()} cores)",
                        machine)
                console.print(f"plot: {plot}")
    finally:
        bench.close()


def _machine_speedup(bench: _Bench, spin: int, processes: int) -> float:
    """What `processes` CPU-bound processes get out of these cores (the scaling's ceiling)."""
    from greentic.bench.ceiling import machine_speedup
    from greentic.config.settings import load_settings

    component = bench.e2e.build_work_component(bench.root / "ceiling", spin)
    return machine_speedup(component, processes, calls=10 if spin else 10_000,
                           fuel=load_settings().wasm_fuel)  # as the executors run it


_spin = click.option("--spin", default=0, show_default=True,
                     help="Iterations the bench component spins per call (0: a light call).")


@bench.command()
@click.option("--conversations", default=20, show_default=True)
@click.option("--messages", default=25, show_default=True, help="Per conversation.")
@click.option("--executors", default=1, show_default=True)
@click.option("--rate", type=float, help="Offer this many messages/s instead of the maximum.")
@click.option("--duration", type=float,
              help="With --rate: offer it for this many seconds (sets --messages).")
@_spin
@click.option("--profile", type=click.Path(file_okay=False, path_type=Path),
              help="Record every service with py-spy into this directory and summarise.")
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 20),
              help="Rounds of baseline + platform, alternating; prints the median ratio (a "
                   "shared host's load drifts between runs).")
def e2e(conversations: int, messages: int, executors: int, rate: float | None,
        duration: float | None, spin: int, profile: Path | None, repeat: int) -> None:
    """WebChat conversations through all five services vs a raw-NATS baseline, same run."""
    if duration is not None:
        if rate is None:
            raise click.BadParameter("needs --rate", param_hint="--duration")
        messages = max(1, -(-round(rate * duration) // conversations))
    asyncio.run(_e2e(conversations, messages, [executors], rate, spin, profile, None,
                     Console(width=150), repeat))


@bench.command()
@click.option("--conversations", default=20, show_default=True)
@click.option("--messages", default=10, show_default=True, help="Per conversation.")
@click.option("--executors", default="1,2", show_default=True,
              help="Executor counts to compare (comma-separated).")
@click.option("--spin", default=100_000_000, show_default=True,
              help="Iterations the bench component spins per call: heavy, so that the "
                   "executors are the bottleneck.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the scaling chart (PNG) here.")
def scale(conversations: int, messages: int, executors: str, spin: int,
          plot: Path | None) -> None:
    """The e2e run with 1, 2, … executors (one wasm thread each), and the speed-up."""
    counts = [int(n) for n in executors.split(",")]
    if counts[0] != 1 or counts != sorted(set(counts)):
        raise click.BadParameter("ascending counts starting with 1 (the speed-up is against "
                                 "one executor), e.g. 1,2", param_hint="--executors")
    asyncio.run(_e2e(conversations, messages, counts, None, spin, None, plot,
                     Console(width=150)))


async def _load(rates: list[float], seconds: float, conversations: int, spin: int,
                plot: Path | None, console: Console) -> None:
    bench = _Bench(console)
    rows: list[tuple[float, Result, Result]] = []
    try:
        console.print(_machine())
        for rate in rates:
            total = max(conversations, round(rate * seconds))
            console.print(f"offered {rate:g} msg/s for {seconds:g} s ({total} messages) …")
            baseline = await bench.baseline(total, rate)
            result = await bench.platform(1, conversations, -(-total // conversations), rate,
                                          spin=spin)
            rows.append((rate, baseline, result))
        table = Table(title=f"latency against offered load ({seconds:g} s per rate)")
        for column in ("offered msg/s", "baseline p50/p95/p99 ms", "greentic p50/p95/p99 ms",
                       "greentic achieved msg/s", "p99 vs baseline", "max lag"):
            table.add_column(column, justify="right")
        for rate, baseline, result in rows:
            table.add_row(f"{rate:g}", "/".join(f"{baseline.percentile(q):.0f}"
                                                for q in (0.5, 0.95, 0.99)),
                          "/".join(f"{result.percentile(q):.0f}" for q in (0.5, 0.95, 0.99)),
                          f"{result.rate:,.0f}",
                          f"{result.percentile(0.99) / baseline.percentile(0.99):.1f}",
                          f"{result.lag_max or 0:,}")
        console.print(table)
        if plot is not None:
            from greentic.bench.plots import latency_vs_load

            latency_vs_load(rows, plot, f"send → reply latency vs offered load "
                                        f"({os.cpu_count()} cores, 1 executor)")
            console.print(f"plot: {plot}")
    finally:
        bench.close()


@bench.command()
@click.option("--rates", default="50,100,200,400,700,1000", show_default=True,
              help="Offered messages/s, comma-separated.")
@click.option("--seconds", default=5.0, show_default=True, help="How long each rate is offered.")
@click.option("--conversations", default=50, show_default=True)
@_spin
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the latency chart (PNG) here.")
def load(rates: str, seconds: float, conversations: int, spin: int, plot: Path | None) -> None:
    """Latency percentiles of baseline and platform at each offered rate, same run."""
    asyncio.run(_load([float(r) for r in rates.split(",")], seconds, conversations, spin, plot,
                      Console(width=150)))


async def _soak(minutes: float, rate: float, conversations: int, every_s: float,
                plot: Path | None, console: Console) -> None:
    bench = _Bench(console)
    try:
        console.print(_machine())
        total = round(rate * minutes * 60)
        console.print(f"soak: {rate:g} msg/s for {minutes:g} min ({total} messages) …")
        result = await bench.platform(1, conversations, -(-total // conversations), rate,
                                      rss_every_s=every_s)
        table = Table(title=f"memory over a {minutes:g}-minute soak at {rate:g} msg/s "
                            f"({result.messages:,} messages, p99 "
                            f"{result.percentile(0.99):.0f} ms)")
        for column in ("process", "RSS MiB at 1 min", "at the end", "max", "growth after 1 min"):
            table.add_column(column, justify="right" if column != "process" else "left")
        for name, points in sorted(result.rss.items()):
            settled = next((rss for t, rss in points if t >= 60), points[0][1])
            end = points[-1][1]
            table.add_row(name, f"{settled:.1f}", f"{end:.1f}",
                          f"{max(rss for _, rss in points):.1f}", f"{end - settled:+.1f}")
        console.print(table)
        if plot is not None:
            from greentic.bench.plots import rss_over_time

            rss_over_time(result.rss, plot, f"RSS per service, {minutes:g} min at {rate:g} msg/s")
            console.print(f"plot: {plot}")
    finally:
        bench.close()


@bench.command()
@click.option("--minutes", default=10.0, show_default=True)
@click.option("--rate", default=100.0, show_default=True, help="Offered messages/s.")
@click.option("--conversations", default=50, show_default=True)
@click.option("--every", "every_s", default=5.0, show_default=True,
              help="Seconds between memory samples.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the memory chart (PNG) here.")
def soak(minutes: float, rate: float, conversations: int, every_s: float,
         plot: Path | None) -> None:
    """Steady load for a while; each service's RSS over time (does memory grow?)."""
    asyncio.run(_soak(minutes, rate, conversations, every_s, plot, Console(width=150)))


@bench.command()
@click.option("--calls", default=2000, show_default=True, help="Calls per latency measurement.")
@click.option("--examples", type=click.Path(file_okay=False, path_type=Path),
              default=Path("examples/components"), show_default=True,
              help="Where the echo and tiny example guests are (built if needed).")
def wasm(calls: int, examples: Path) -> None:
    """Per-call latency (host vs bare wasmtime-py), instantiate, cached vs cold load, calls/s."""
    from greentic.bench.wasm import run_wasm_bench

    for line in run_wasm_bench(examples, calls=calls, progress=lambda m: click.echo(m, err=True)):
        click.echo(line)


@bench.command()
@click.option("--calls", default=300, show_default=True, help="Calls per measurement.")
def providers(calls: int) -> None:
    """A Telegram webhook and reply through the built-in channel and through the same channel
    as a provider component, in one run: p50/p99 and the component's overhead."""
    from greentic.bench.providers import measure

    work = (Path(".greentic") / "bench-providers").resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = asyncio.run(measure(calls, work))
    click.echo(f"{'path':<52} {'p50 µs':>9} {'p99 µs':>9} {'vs built-in':>11}")
    for index, row in enumerate(rows):
        base = rows[index - index % 2]
        click.echo(f"{row['name']:<52} {row['p50_us']:>9.0f} {row['p99_us']:>9.0f} "
                   f"{row['p50_us'] / base['p50_us']:>10.2f}x")
    for side, (built_in, component) in (("webhook", rows[0:2]), ("reply", rows[2:4])):
        click.echo(f"component overhead per {side}: "
                   f"{(component['p50_us'] - built_in['p50_us']) / 1000:.2f} ms (p50)")
