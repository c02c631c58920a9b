"""`make bench [ARGS=...]`: start (or attach), seed, warm up, run the rounds, report, clean up."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx

from bench import profile, report, seed, workers
from bench.console import BenchError, say
from bench.outcome import Outcome
from bench.procs import cores_used, memory_mb, sample_cpu
from bench.scenarios import SCENARIOS, Context, Measurement, Scenario, measure, settle
from bench.system import DEFAULT_DATABASE_URL, Launch, System, attached, drain_logs
from bench.wrk import ensure_wrk

MAX_DURATION_S = 50
# The multi-worker run's name for --only; it runs by default when the bench starts the
# system (a system already running cannot be restarted with other settings).
WORKERS_RUN = "workers"
IDLE_SAMPLE_S = 3.0  # a direct run's credential lives 60 s


@dataclass(frozen=True)
class Options:
    duration: float
    rounds: int
    warmup: float
    catalog: int
    users: int
    only: tuple[str, ...]
    profile: bool


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 s x 1 round, 10,000 products")
    parser.add_argument("--catalog", type=int, help="products to seed (default 100,000)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated scenario names ({WORKERS_RUN!r}: the 1 vs 2 workers run)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then run each scenario once more under py-spy (bench/results/profiles/)",
    )
    arguments = parser.parse_args(argv)
    quick = arguments.quick
    duration = arguments.duration or (2.0 if quick else 10.0)
    if not 0 < duration <= MAX_DURATION_S:
        parser.error(f"--duration must be within (0, {MAX_DURATION_S}] seconds")
    only = tuple(name for name in arguments.only.split(",") if name)
    unknown = set(only) - {scenario.name for scenario in SCENARIOS} - {WORKERS_RUN}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return Options(
        duration=duration,
        rounds=max(arguments.rounds or (1 if quick else 3), 1),
        warmup=1.0 if quick else 3.0,
        catalog=max(arguments.catalog or (10_000 if quick else 100_000), 200),
        users=4 if quick else 8,
        only=only,
        profile=arguments.profile,
    )


def bcrypt_verify_seconds(rounds: int) -> float:
    """One bcrypt check at the service's cost, in this process: the login ceiling's unit.

    CPU time, not wall time: on a shared machine the wall clock would count the other
    processes' turns and lower the ceiling the service is held to.
    """
    password = secrets.token_urlsafe(33).encode()  # 44 bytes, as the service's pre-hash
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds))
    times = []
    for _ in range(3):
        started = time.thread_time()
        bcrypt.checkpw(password, hashed)
        times.append(time.thread_time() - started)
    return statistics.median(times)


async def prepare(system: System, options: Options, cores: int) -> Context:
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=60) as client:
        started = time.monotonic()
        users = await seed.register_users(client, options.users)
        token = await seed.login(client, users[0])
        say(f"registered {len(users)} users ({time.monotonic() - started:.1f} s)")
        started = time.monotonic()
        if system.product_database_url:
            await seed.seed_catalog_sql(system.product_database_url, options.catalog, users)
        else:
            await seed.seed_catalog_api(client, options.catalog, token)
        say(f"seeded {options.catalog:,} products ({time.monotonic() - started:.1f} s)")
        credentials = seed.Credentials(system.gateway_key) if system.gateway_key else None
        direct = system.product_url if credentials is not None else None
        auth = credentials.auth() if credentials is not None else None
        async with httpx.AsyncClient(
            base_url=direct or system.gateway_url, timeout=60, auth=auth
        ) as lister:
            if system.product_database_url:
                ids = await seed.sample_ids_sql(system.product_database_url, 1000)
            else:
                ids = await seed.sample_ids(lister, 1000)
            started = time.monotonic()
            cursor, row = await seed.deep_cursor(lister, options.catalog)
        say(f"deep cursor at row {row:,} ({time.monotonic() - started:.1f} s)")
        order_products: list[str] = []
        order_ids: list[str] = []
        if system.order_url is not None or os.environ.get("BENCH_URL"):
            started = time.monotonic()
            order_products, order_ids = await seed.seed_orders(client, token)
            say(f"placed {len(order_ids)} orders ({time.monotonic() - started:.1f} s)")
    return Context(
        gateway_url=system.gateway_url,
        product_url=system.product_url,
        credentials=credentials,
        ids=ids,
        users=users,
        token=token,
        deep_cursor=cursor,
        run_tag=secrets.token_hex(4),
        cores=cores,
        order_products=order_products,
        order_ids=order_ids,
    )


async def bench(
    system: System, options: Options, binary: str, workdir: Path, launch: Launch | None = None
) -> None:
    cores = len(os.sched_getaffinity(0))
    bcrypt_rounds = int(os.environ.get("BCRYPT_ROUNDS", "12"))
    context = await prepare(system, options, cores)
    pids = system.pids()
    say("processes: " + ", ".join(f"{name} {pid}" for name, pid in pids.items()))
    scenarios = [
        scenario
        for scenario in SCENARIOS
        if scenario.available(context) and (not options.only or scenario.name in options.only)
    ]

    lags: list[float] = []

    async def run(scenario: Scenario, duration: float) -> Measurement:
        load = scenario.build(context, duration)
        watcher = None
        if scenario.name == "create_order" and system.order_url is not None:
            watcher = asyncio.create_task(watch_outbox_lag(system.order_url, lags))
        try:
            result = await measure(binary, load, workdir, pids, system.databases)
        finally:
            if watcher is not None:
                watcher.cancel()
        await settle(pids)
        drain_logs(system.log_paths, scenario.name)
        return result

    say(f"warming up ({options.warmup:g} s per scenario)")
    for scenario in scenarios:
        await run(scenario, options.warmup)
    await asyncio.sleep(1)
    rss = {name: mb for name, pid in pids.items() if (mb := memory_mb(pid)) is not None}
    # What each service burns with no request at all (relays and readiness polls, the
    # gateway's health checks): subtracted from its per-request figures, which at 100
    # req/s on a busy machine it would otherwise inflate by ~0.2 ms.
    before = sample_cpu({name: [pid] for name, pid in pids.items()})
    await asyncio.sleep(IDLE_SAMPLE_S)
    idle = cores_used(before, sample_cpu({name: [pid] for name, pid in pids.items()}))
    say("idle cores: " + ", ".join(f"{name} {value or 0:.3f}" for name, value in idle.items()))

    runs: dict[str, list[Measurement]] = {scenario.name: [] for scenario in scenarios}
    for number in range(1, options.rounds + 1):
        async with httpx.AsyncClient(base_url=system.gateway_url, timeout=60) as client:
            context.token = await seed.login(client, context.users[0])
        for scenario in scenarios:
            measurement = await run(scenario, options.duration)
            runs[scenario.name].append(measurement)
            result = measurement.result
            say(
                f"round {number}/{options.rounds} {scenario.name:<20} {result.rps:>9,.0f} req/s  "
                f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
            )

    if options.profile:
        await profile.run(
            scenarios, context, options.duration, pids, binary, workdir, system.log_paths
        )

    peak = {name: mb for name, pid in pids.items() if (mb := memory_mb(pid, "VmHWM")) is not None}
    # After the peaks are read: the restarts start product-service's memory afresh.
    worker_rows: list[workers.WorkersRow] = []
    if launch is not None and (not options.only or WORKERS_RUN in options.only):
        say("product-service with 1 and 2 workers (WEB_CONCURRENCY), interleaved rounds")
        worker_rows = await workers.run(
            launch,
            context,
            rounds=options.rounds,
            duration=options.duration,
            warmup=options.warmup,
            binary=binary,
            workdir=workdir,
        )

    outcome = Outcome(
        summaries=[report.summarize(scenario, runs[scenario.name], idle) for scenario in scenarios],
        cores=cores,
        bcrypt_s=bcrypt_verify_seconds(bcrypt_rounds),
        bcrypt_rounds=bcrypt_rounds,
        rss_mb=rss,
        peak_mb=peak,
        ready_s=system.ready_s,
        ready_cpu_s=system.ready_cpu_s,
        outbox_lag_s=max(lags) if lags else None,
    )
    document = outcome.document()
    if worker_rows:
        document["workers"] = workers.document(worker_rows)
    written = report.write(document)
    heading = (
        f"make bench: {options.rounds} round(s) x {options.duration:g} s, c=32 (login "
        f"c={2 * cores}, >= 10 s), {options.catalog:,} products, {cores} cores, "
        "load average at the end " + " ".join(f"{value:.2f}" for value in os.getloadavg())
    )
    sys.stdout.write(outcome.render(heading, written))
    sys.stdout.write(workers.render(worker_rows))


LAG_METRIC = "events_outbox_lag_seconds"


async def watch_outbox_lag(order_url: str, lags: list[float]) -> None:
    """order-service's outbox lag every 0.5 s while the orders run (until cancelled)."""
    async with httpx.AsyncClient(base_url=order_url, timeout=5) as client:
        while True:
            try:
                text = (await client.get("/metrics")).text
            except httpx.HTTPError:
                text = ""
            for line in text.splitlines():
                if line.startswith(LAG_METRIC):
                    lags.append(float(line.rsplit(" ", 1)[1]))
            await asyncio.sleep(0.5)


async def main_async(options: Options) -> None:
    binary = ensure_wrk()
    launch: Launch | None = None
    try:
        if os.environ.get("BENCH_URL"):
            system = attached()
            say(f"measuring the system at {system.gateway_url}")
        else:
            launch = Launch(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)
            say("starting the system on PostgreSQL, each service its own process")
            system = await launch.start()
            say(
                f"ready in {system.ready_s:.2f} s ({system.ready_cpu_s:.1f} s of CPU) "
                f"at {system.gateway_url}"
            )
        if launch is not None:
            await bench(system, options, binary, launch.workdir, launch)
        else:
            with tempfile.TemporaryDirectory(prefix="shop-bench-") as workdir:
                await bench(system, options, binary, Path(workdir))
    except BenchError:
        if launch is not None:
            launch.say_errors()  # what the services logged about it, before the logs go
        raise
    finally:
        if launch is not None:
            say("stopping the system and dropping its databases")
            await launch.stop()


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    started = time.monotonic()

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            # A second Ctrl-C must not cut the clean-up short.
            loop.add_signal_handler(signum, lambda: task.cancelling() or task.cancel())
        await main_async(options)

    try:
        asyncio.run(guarded())
    except asyncio.CancelledError:
        say("interrupted; everything it started is stopped")
        sys.exit(130)
    except BenchError as error:
        say(f"stopped: {error}")
        sys.exit(1)
    say(f"done in {time.monotonic() - started:.0f} s")
