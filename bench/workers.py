"""Issue 15's multi-worker run: product-service with 1 and with 2 workers (WEB_CONCURRENCY),
a GET by id (direct) and a page of 100 (via the gateway), in interleaved rounds.

The bench restarts product-service between the two settings (its other processes keep
running); the `product` CPU is the parent's and every worker's, found as every process
holding the service's listening socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import report
from bench.console import say
from bench.scenarios import SCENARIOS, Context, Measurement, measure, settle
from bench.system import Launch, drain_logs
from bench.wrk import Load

WORKER_COUNTS = (1, 2)
WORKER_SCENARIOS = ("get_product_direct", "list_page_100")


@dataclass(frozen=True)
class WorkersRow:
    workers: int
    summary: report.Summary


async def run(
    launch: Launch,
    context: Context,
    *,
    rounds: int,
    duration: float,
    warmup: float,
    binary: str,
    workdir: Path,
) -> list[WorkersRow]:
    """Each round: both settings (alternating which goes first, so a burst of other load
    on the machine does not land on one setting), each scenario once."""
    system = launch.system
    assert system is not None
    scenarios = [s for s in SCENARIOS if s.name in WORKER_SCENARIOS and s.available(context)]
    runs: dict[tuple[int, str], list[Measurement]] = {}
    current = 1
    for number in range(1, rounds + 1):
        order = WORKER_COUNTS if number % 2 else tuple(reversed(WORKER_COUNTS))
        for workers in order:
            if workers != current:
                await launch.restart_product(workers)
                current = workers
                for scenario in scenarios:  # new connections, first requests of each path
                    await _once(scenario.build(context, warmup), binary, workdir, launch)
            for scenario in scenarios:
                measured = await _once(scenario.build(context, duration), binary, workdir, launch)
                runs.setdefault((workers, scenario.name), []).append(measured)
                result = measured.result
                say(
                    f"workers round {number}/{rounds} {workers} x {scenario.name:<20} "
                    f"{result.rps:>9,.0f} req/s  p99 {result.p99_ms:7.2f} ms  "
                    f"product {measured.cores.get('product-service') or 0:.2f} cores  "
                    f"errors {result.errors}"
                )
    if current != 1:
        await launch.restart_product(1)
    return [
        WorkersRow(workers, report.summarize(scenario, runs[(workers, scenario.name)]))
        for scenario in scenarios
        for workers in WORKER_COUNTS
        if (workers, scenario.name) in runs
    ]


async def _once(load: Load, binary: str, workdir: Path, launch: Launch) -> Measurement:
    system = launch.system
    assert system is not None
    groups = system.pid_groups()
    measured = await measure(binary, load, workdir, groups, system.databases)
    await settle(groups)
    drain_logs(system.log_paths, "workers")
    return measured


def render(rows: list[WorkersRow]) -> str:
    """The table, and 2 workers over 1 for each scenario."""
    if not rows:
        return ""
    head = (
        f"{'scenario':<32} {'workers':>7} {'req/s':>8} {'(min-max)':>15} {'p99 ms':>7} "
        f"{'errors':>6} {'product':>7} {'gw':>5} {'db':>5} {'other':>5} {'product us/req':>14}"
    )
    lines = ["product-service with 1 and 2 workers (WEB_CONCURRENCY):", head, "-" * len(head)]
    for row in rows:
        s = row.summary
        cores = s.cores
        lines.append(
            f"{s.scenario.title:<32} {row.workers:>7} {s.rps:>8,.0f} "
            f"{f'{s.rps_min:,.0f}-{s.rps_max:,.0f}':>15} {s.p99_ms:>7.2f} {s.errors:>6} "
            f"{_cell(cores.get('product-service')):>7} {_cell(cores.get('api-gateway')):>5} "
            f"{_cell(cores.get('db')):>5} {_cell(cores.get('other')):>5} "
            f"{_cell(s.product_us_per_request, '.0f'):>14}"
        )
    for name, gain in gains(rows).items():
        lines.append(
            f"{name}: 2 workers / 1: req/s {_cell(gain['rps'])}x, "
            f"product CPU per request {_cell(gain['product_us'])}x"
        )
    return "\n".join(lines) + "\n"


def gains(rows: list[WorkersRow]) -> dict[str, dict[str, float | None]]:
    by_key = {(row.workers, row.summary.scenario.name): row.summary for row in rows}
    found: dict[str, dict[str, float | None]] = {}
    for name in WORKER_SCENARIOS:
        one, two = by_key.get((1, name)), by_key.get((2, name))
        if one is None or two is None:
            continue
        found[name] = {
            "rps": report.ratio(two.rps, one.rps),
            "product_us": report.ratio(two.product_us_per_request, one.product_us_per_request),
        }
    return found


def document(rows: list[WorkersRow]) -> dict[str, object]:
    return {
        "runs": [
            {
                "scenario": row.summary.scenario.name,
                "workers": row.workers,
                "rps": round(row.summary.rps, 1),
                "rps_min": round(row.summary.rps_min, 1),
                "rps_max": round(row.summary.rps_max, 1),
                "p99_ms": round(row.summary.p99_ms, 2),
                "errors": row.summary.errors,
                "cores": {k: v if v is None else round(v, 3) for k, v in row.summary.cores.items()},
                "product_us_per_request": row.summary.product_us_per_request,
            }
            for row in rows
        ],
        "gains": gains(rows),
    }


def _cell(value: float | None, fmt: str = ".2f") -> str:
    return "n/a" if value is None else format(value, fmt)
