"""The Grafana dashboard and Prometheus config refer only to metrics the processes export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
SOURCES = ("shop-common", "api-gateway", "auth-service", "product-service")
SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metric_names() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r'(?:Counter|Histogram|Gauge)\(\s*"([a-z_]+)"')
    for source in SOURCES:
        for path in (ROOT / source / "src").rglob("*.py"):
            names.update(pattern.findall(path.read_text()))
    return names


def test_every_dashboard_query_uses_an_exported_metric() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exported = exported_metric_names()
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used.update(re.findall(r"\b((?:http|gateway)_[a-z_]+)\b", target["expr"]))
    assert used
    for name in used:
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        assert base in exported, name


def test_prometheus_scrapes_the_three_processes() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"api-gateway", "auth-service", "product-service"} <= jobs
