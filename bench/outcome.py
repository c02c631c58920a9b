"""A finished run: the scenarios' summaries and what was measured around them, as the
ratios of issue 7 and the text `make bench` ends with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import report


@dataclass(frozen=True)
class Outcome:
    summaries: list[report.Summary]
    cores: int
    bcrypt_s: float  # CPU time of one verify at the configured cost
    bcrypt_rounds: int
    rss_mb: dict[str, float]
    peak_mb: dict[str, float]
    ready_s: float | None
    ready_cpu_s: float | None
    # order-service's events_outbox_lag_seconds, sampled during the POST /orders runs.
    outbox_lag_s: float | None = None

    def _get(self, name: str) -> report.Summary | None:
        return next((s for s in self.summaries if s.scenario.name == name), None)

    def rps(self, name: str) -> float | None:
        summary = self._get(name)
        return summary.rps if summary else None

    def cpu(self, name: str) -> float | None:
        summary = self._get(name)
        return summary.cpu_ms_per_request if summary else None

    def product_us(self, name: str) -> float | None:
        summary = self._get(name)
        return summary.product_us_per_request if summary else None

    def ratios(self) -> dict[str, float | None]:
        ratio = report.ratio
        return {
            "gateway_efficiency": ratio(
                self.rps("get_product_gateway"), self.rps("get_product_direct")
            ),
            # What a page costs, deep over first: the system's CPU per request where /proc
            # tells it (other work on a shared machine moves req/s, not this), else req/s.
            "deep_page_ratio": ratio(self.cpu("list_deep_page"), self.cpu("list_first_page"))
            or ratio(self.rps("list_first_page"), self.rps("list_deep_page")),
            "login_efficiency": ratio(self.rps("login"), self.cores / self.bcrypt_s),
            # Issue 15: product-service's CPU per request against a GET by id, same run.
            "page_100_vs_get": ratio(self.product_us("list_page_100"), self._get_us()),
            "page_20_vs_get": ratio(self.product_us("list_first_page"), self._get_us()),
            "post_vs_get": ratio(self.product_us("create_product"), self._get_us()),
        }

    def _get_us(self) -> float | None:
        return self.product_us("get_product_gateway")

    def orders(self) -> dict[str, float | None]:
        return {
            "orders_per_second": self.rps("create_order"),
            "outbox_lag_seconds_max": self.outbox_lag_s,
        }

    def document(self) -> dict[str, object]:
        return report.document(
            self.summaries, self.ratios(), self.rss_mb, self.ready_s, {"orders": self.orders()}
        )

    def render(self, heading: str, written: Path) -> str:
        ratios = self.ratios()
        efficiency = ratios["gateway_efficiency"]
        by_rps = report.ratio(self.rps("list_first_page"), self.rps("list_deep_page"))
        by_name = {summary.scenario.name: summary for summary in self.summaries}
        lines = [
            "",
            heading,
            "",
            report.table(self.summaries),
            "",
            f"gateway efficiency (via gateway / direct req/s): {_fmt(efficiency)}",
            f"deep page / first page (CPU per request):        {_fmt(ratios['deep_page_ratio'])}"
            f"  (by req/s: {_fmt(by_rps)})",
            f"login / (cores / one bcrypt verify):              {_fmt(ratios['login_efficiency'])}"
            f"  (cost {self.bcrypt_rounds}: one verify {self.bcrypt_s * 1000:.0f} ms of CPU, "
            f"ceiling {self.cores / self.bcrypt_s:.1f} logins/s; the system spent "
            f"{_fmt(self.cpu('login'))} ms of CPU per login)",
            "idle RSS MB: "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in self.rss_mb.items())
            + "   peak: "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in self.peak_mb.items()),
            "issue 15, product-service CPU per request over a GET by id's (same run): "
            f"page of 100 {_fmt(ratios['page_100_vs_get'], 'x')}, page of 20 "
            f"{_fmt(ratios['page_20_vs_get'], 'x')}, POST {_fmt(ratios['post_vs_get'], 'x')}",
            f"orders: {_fmt(self.rps('create_order'), ' orders/s')} (POST /orders), "
            f"outbox lag at most {_fmt(self.outbox_lag_s, ' s')} "
            "(events_outbox_lag_seconds on order-service's /metrics, sampled every 0.5 s)",
            f"ready after launch: {_fmt(self.ready_s, ' s')} "
            f"(CPU used to get there: {_fmt(self.ready_cpu_s, ' s')})",
            "",
            "targets (issues 7 and 15):",
            report.targets_table(report.targets(by_name, ratios, self.rss_mb, self.ready_s)),
            "",
            f"written: {report.RESULTS / 'latest.json'} and {written}",
        ]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"
