"""From the rounds' measurements to the table, the targets of issue 7 and latest.json."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scenarios import Measurement, Scenario

RESULTS = Path(__file__).parent / "results"
CPU_GROUPS = (
    "api-gateway",
    "product-service",
    "auth-service",
    "order-service",
    "db",
    "wrk",
    "other",
)
CPU_HEADINGS = ("gw", "product", "auth", "order", "db", "wrk", "other")
SYSTEM_GROUPS = ("api-gateway", "product-service", "auth-service", "order-service", "db")


@dataclass(frozen=True)
class Summary:
    """One scenario over all rounds: medians, and the spread of req/s."""

    scenario: Scenario
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    errors: int
    cores: dict[str, float | None]
    # Each process's cores with no load (sampled once after the warm-up).
    idle: dict[str, float | None] = field(default_factory=dict)

    @property
    def cpu_ms_per_request(self) -> float | None:
        """CPU of the whole system under test (not wrk, not other work) per request."""
        known = [value for group in SYSTEM_GROUPS if (value := self.cores.get(group)) is not None]
        return sum(known) / self.rps * 1000 if known and self.rps else None

    @property
    def product_us_per_request(self) -> float | None:
        """product-service's own CPU per request, its idle CPU taken off: what issue 15's
        same-run ratios compare."""
        product = self.cores.get("product-service")
        if product is None or not self.rps:
            return None
        return max(product - (self.idle.get("product-service") or 0.0), 0.0) / self.rps * 1e6

    @property
    def gateway_us_per_request(self) -> float | None:
        gateway = self.cores.get("api-gateway") if self.scenario.via_gateway else None
        return gateway / self.rps * 1e6 if gateway is not None and self.rps else None


def summarize(
    scenario: Scenario,
    runs: Sequence[Measurement],
    idle: dict[str, float | None] | None = None,
) -> Summary:
    rates = [run.result.rps for run in runs]
    cores: dict[str, float | None] = {}
    for group in (*CPU_GROUPS, "machine"):
        values = [run.cores.get(group) for run in runs]
        known = [value for value in values if value is not None]
        cores[group] = statistics.median(known) if known else None
    return Summary(
        scenario=scenario,
        rps=statistics.median(rates),
        rps_min=min(rates),
        rps_max=max(rates),
        p50_ms=statistics.median(run.result.p50_ms for run in runs),
        p99_ms=statistics.median(run.result.p99_ms for run in runs),
        errors=sum(run.result.errors for run in runs),
        cores=cores,
        idle=dict(idle or {}),
    )


@dataclass(frozen=True)
class Target:
    text: str
    value: str
    met: bool | None  # None: not measured in this run


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _target(
    text: str,
    value: float | None,
    shown: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
) -> Target:
    if value is None:
        return Target(text, "n/a", None)
    met = value >= at_least if at_least is not None else value <= (at_most or 0.0)
    return Target(text, shown.format(value), met)


def targets(
    by_name: dict[str, Summary],
    ratios: dict[str, float | None],
    rss_mb: dict[str, float],
    ready_s: float | None,
) -> list[Target]:
    item = by_name.get("get_product_gateway")
    health = by_name.get("health_gateway")
    hop = ratio(health.rps, health.cores.get("api-gateway")) if health else None
    found = [
        _target(
            "gateway efficiency on GET /products/{id} >= 0.6",
            ratios.get("gateway_efficiency"),
            "{:.2f}",
            at_least=0.6,
        ),
        _target(
            "GET /products/{id} via gateway >= 2,000 req/s",
            item.rps if item else None,
            "{:,.0f} req/s",
            at_least=2000,
        ),
        _target(
            "GET /products/{id} via gateway p99 <= 25 ms",
            item.p99_ms if item else None,
            "{:.1f} ms",
            at_most=25,
        ),
        _target(
            "issue 15: gateway efficiency on GET /products/{id} >= 0.9",
            ratios.get("gateway_efficiency"),
            "{:.2f}",
            at_least=0.9,
        ),
        _target(
            "issue 15: GET /products/{id} via gateway p99 <= 15 ms",
            item.p99_ms if item else None,
            "{:.1f} ms",
            at_most=15,
        ),
        _target(
            "issue 15: page of 100 <= 2.5x a GET by id (product CPU)",
            ratios.get("page_100_vs_get"),
            "{:.2f}x",
            at_most=2.5,
        ),
        _target(
            "issue 15: page of 20 <= 1.5x a GET by id (product CPU)",
            ratios.get("page_20_vs_get"),
            "{:.2f}x",
            at_most=1.5,
        ),
        _target(
            "issue 15: POST /products <= 2x a GET by id (product CPU)",
            ratios.get("post_vs_get"),
            "{:.2f}x",
            at_most=2,
        ),
        _target(
            "hop alone (/health) >= 10,000 req/s per gateway core",
            hop,
            "{:,.0f} req/s per core",
            at_least=10_000,
        ),
        _target(
            "deep page costs <= 1.2x the first page",
            ratios.get("deep_page_ratio"),
            "{:.2f}x",
            at_most=1.2,
        ),
        _target(
            "login >= 0.9 x (cores / bcrypt time)",
            ratios.get("login_efficiency"),
            "{:.2f}",
            at_least=0.9,
        ),
    ]
    for process in ("api-gateway", "auth-service", "product-service", "order-service"):
        found.append(
            _target(
                f"idle RSS of {process} <= 100 MB", rss_mb.get(process), "{:.0f} MB", at_most=100
            )
        )
    found.append(_target("ready <= 5 s after launch", ready_s, "{:.1f} s", at_most=5))
    return found


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def table(summaries: Sequence[Summary]) -> str:
    head = (
        f"{'scenario':<32} {'req/s':>8} {'(min-max)':>15} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
    )
    head += "".join(f" {name:>7}" for name in CPU_HEADINGS)
    head += f" {'cpu ms/req':>10} {'gw us/req':>9} {'product us/req':>14}"
    lines = [head, "-" * len(head)]
    for summary in summaries:
        spread = f"{summary.rps_min:,.0f}-{summary.rps_max:,.0f}"
        line = (
            f"{summary.scenario.title:<32} {summary.rps:>8,.0f} {spread:>15} "
            f"{summary.p50_ms:>7.2f} {summary.p99_ms:>7.2f} {summary.errors:>6}"
        )
        line += "".join(f" {_cell(summary.cores.get(group), '.2f'):>7}" for group in CPU_GROUPS)
        line += f" {_cell(summary.cpu_ms_per_request, '.2f'):>10}"
        line += f" {_cell(summary.gateway_us_per_request, '.0f'):>9}"
        line += f" {_cell(summary.product_us_per_request, '.0f'):>14}"
        lines.append(line)
    lines.append(
        "CPU columns: average cores busy during the runs (all cores busy = the core count); "
        "other = the rest of the machine;\ncpu ms/req = gateway + services + "
        "database CPU per request, which other work on the machine does not inflate."
    )
    return "\n".join(lines)


def targets_table(found: Sequence[Target]) -> str:
    lines = []
    for target in found:
        status = "n/a" if target.met is None else ("met" if target.met else "MISSED")
        lines.append(f"  [{status:^6}] {target.text:<55} {target.value}")
    return "\n".join(lines)


def document(
    summaries: Sequence[Summary],
    ratios: dict[str, float | None],
    rss_mb: dict[str, float],
    ready_s: float | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """latest.json, in the shape issue 7 gives, plus `extra` (the orders' figures)."""
    return {
        "scenarios": [
            {
                "name": summary.scenario.name,
                "rps": round(summary.rps, 1),
                "p50_ms": round(summary.p50_ms, 3),
                "p99_ms": round(summary.p99_ms, 3),
                "errors": summary.errors,
                "product_us_per_request": _rounded(summary.product_us_per_request),
                "cpu_ms_per_request": _rounded(summary.cpu_ms_per_request, 3),
            }
            for summary in summaries
        ],
        "ratios": {
            key: None if value is None else round(value, 3) for key, value in ratios.items()
        },
        "rss_mb": {key: round(value, 1) for key, value in rss_mb.items()},
        "ready_s": None if ready_s is None else round(ready_s, 2),
        **(extra or {}),
    }


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def write(document_: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(document_, indent=2) + "\n"
    stamped = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    stamped.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    return stamped
