"""`greentic bench …`: measurements on this machine, printed as one table."""

import asyncio
import os
import shutil
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
from greentic.cli.processes import free_port, start_nats, stop_processes
from greentic.errors import StoreUnavailable
from greentic.flow.engine import FlowEngine
from greentic.flow.loader import load_flow
from greentic.runner.executor import TurnApplier
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


def _e2e_table(results: list[Result], baseline: Result, title: str) -> Table:
    table = Table(title=title)
    for column in ("run", "messages", "msg/s", "vs baseline", "p50 ms", "p95 ms", "p99 ms",
                   "p99 vs baseline"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for result in [baseline, *results]:
        table.add_row(result.name, str(result.messages), f"{result.rate:,.0f}",
                      f"{result.rate / baseline.rate:.2f}",
                      *(f"{result.percentile(q):.1f}" for q in (0.5, 0.95, 0.99)),
                      f"{result.percentile(0.99) / baseline.percentile(0.99):.2f}")
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


async def _e2e(conversations: int, messages: int, executors: list[int], rate: float | None,
               console: Console) -> None:
    from greentic.bench import e2e

    root = e2e.workdir()
    port = free_port()
    nats_server = start_nats(root / "nats", port, root / "nats.log")
    url = f"nats://127.0.0.1:{port}"
    try:
        await e2e.create_baseline_streams(url)
        relays = e2e.start_relays(url)
        try:
            await asyncio.sleep(1.0)  # relays bind their consumers
            total = conversations * messages
            console.print(f"baseline: {total} messages …")
            baseline = await e2e.run_baseline(url, total, rate, relays)
        finally:
            stop_processes(list(relays.values()), 5)
        results = []
        for count in executors:
            http_port = free_port()
            platform = e2e.start_platform(root / f"x{count}", url, count, http_port)
            try:
                ingress = f"http://127.0.0.1:{http_port}"
                console.print(f"greentic with {count} executor(s): {conversations} "
                              f"conversations x {messages} messages ...")
                result = await e2e.run_platform(ingress, conversations, messages, rate,
                                                platform)
                result.name = f"greentic, {count} executor(s)"
                results.append(result)
            finally:
                stop_processes(list(platform.values()), 20)
        mode = f"offered at {rate:g} msg/s" if rate else "as fast as possible"
        console.print(_e2e_table(results, baseline, f"end to end, {mode}"))
        console.print(_process_table([baseline, *results]))
        if len(results) > 1:
            console.print(f"scaling {executors[0]} → {executors[-1]} executors: "
                          f"{results[-1].rate / results[0].rate:.2f}x")
    finally:
        stop_processes([nats_server], 10)
        shutil.rmtree(root, ignore_errors=True)



@bench.command()
@click.option("--conversations", default=20, show_default=True)
@click.option("--messages", default=25, show_default=True, help="Per conversation.")
@click.option("--executors", default=1, show_default=True)
@click.option("--rate", type=float, help="Offer this many messages/s instead of the maximum.")
def e2e(conversations: int, messages: int, executors: int, rate: float | None) -> None:
    """WebChat conversations through all five services vs a raw-NATS baseline, same run."""
    asyncio.run(_e2e(conversations, messages, [executors], rate, Console(width=150)))


@bench.command()
@click.option("--conversations", default=20, show_default=True)
@click.option("--messages", default=25, show_default=True, help="Per conversation.")
def scale(conversations: int, messages: int) -> None:
    """The e2e run with 1 and 2 executors, and the speed-up."""
    asyncio.run(_e2e(conversations, messages, [1, 2], None, Console(width=150)))


@bench.command()
@click.option("--calls", default=2000, show_default=True, help="Calls per latency measurement.")
@click.option("--examples", type=click.Path(file_okay=False, path_type=Path),
              default=Path("examples/components"), show_default=True,
              help="Where the echo and tiny example guests are (built if needed).")
def wasm(calls: int, examples: Path) -> None:
    """Per-call latency (host vs bare wasmtime-py), instantiate, cached vs cold load, calls/s."""
    from greentic.component.bench import run_wasm_bench

    for line in run_wasm_bench(examples, calls=calls, progress=lambda m: click.echo(m, err=True)):
        click.echo(line)
