"""The Grafana dashboard and Prometheus config refer only to metrics the processes export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.deploy.conftest import SERVICES

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
SOURCES = ("shop-common", *(service.name for service in SERVICES))
SUFFIXES = ("_bucket", "_sum", "_count")
# Our metric families: HTTP and gateway (every process), database pools, events
# (shop_common.events: outbox, relay, consumers), orders (order-service).
OURS = re.compile(r"\b((?:http|gateway|db|events|orders)_[a-z_]+)\b")


def exported_metric_names() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r'(?:Counter|Histogram|Gauge)(?:MetricFamily)?\(\s*"([a-z_]+)"')
    for source in SOURCES:
        for path in (ROOT / source / "src").rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_dashboard_query_uses_an_exported_metric() -> None:
    exported = exported_metric_names()
    used = {name for expr in dashboard_queries() for name in OURS.findall(expr)}
    assert used
    for name in used:
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        assert base in exported, name


def test_the_check_knows_a_metric_nobody_exports() -> None:
    exported = exported_metric_names()
    assert "events_outbox_lag_seconds" in exported and "db_pool_size" in exported
    assert "orders_shipped_by_owl_total" not in exported


def test_the_dashboard_shows_orders_by_status_and_the_event_pipeline() -> None:
    used = {name for expr in dashboard_queries() for name in OURS.findall(expr)}
    assert "orders_status_changes_total" in used  # orders by status
    # Outbox lag, consumer redeliveries and dead letters (issue 14's Deploy bullet).
    assert {
        "events_outbox_lag_seconds",
        "events_redeliveries_total",
        "events_dead_letters_total",
    } <= used
    by_status = [expr for expr in dashboard_queries() if "orders_status_changes_total" in expr]
    assert any("by (status)" in expr for expr in by_status)


def test_prometheus_scrapes_every_process() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    names = {service.name for service in SERVICES}
    assert names <= set(jobs)
    for service in SERVICES:
        targets = jobs[service.name]["static_configs"][0]["targets"]
        assert targets == [f"{service.name}:{service.port}"]
    kept = next(
        rule["regex"] for rule in jobs["shop-pods"]["relabel_configs"] if rule["action"] == "keep"
    )
    assert set(kept.split("|")) == names
