"""`make test-images` plans its run from the compose file: which images to make, in which
order to start the services, which are one-shot steps. A service added to the compose
file (order-service, NATS) must be covered without editing the test."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shop_common.services import WITH_DATABASE
from tests.deploy.conftest import COMPOSE_FILE, ROOT

IMAGES = ROOT / "deploy" / "images"


def load_stack_test() -> ModuleType:
    # A script beside its helpers (engine.py, flow.py), not a package: import it as one.
    sys.path.insert(0, str(IMAGES))
    try:
        spec = importlib.util.spec_from_file_location("stack_test", IMAGES / "stack_test.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(IMAGES))


plan = load_stack_test()


def read(environ: dict[str, str], project: Path) -> dict[str, Any]:
    """The compose file alone in a directory: a developer's `.env` must not change it."""
    (project / "docker-compose.yml").write_text(COMPOSE_FILE.read_text())
    return dict(plan.read_compose(project, environ))


@pytest.fixture
def compose(tmp_path: Path) -> dict[str, Any]:
    return read({}, tmp_path)


def test_every_service_starts_after_what_it_depends_on(compose: dict[str, Any]) -> None:
    stages = plan.start_stages(compose)
    order = [name for stage in stages for name in stage]
    assert sorted(order) == sorted(compose["services"])
    position = {name: index for index, stage in enumerate(stages) for name in stage}
    for name, spec in compose["services"].items():
        for dependency in plan.depends_on(spec):
            assert position[dependency] < position[name], (dependency, name)
    assert stages[-1] == ["api-gateway"]
    flat = [name for stage in stages for name in stage]
    assert flat.index("nats") < flat.index("order-service") < flat.index("api-gateway")
    assert flat.index("product-service") < flat.index("order-service")


def test_a_service_added_later_is_planned_without_editing_the_test(
    compose: dict[str, Any],
) -> None:
    grown = copy.deepcopy(compose)
    grown["services"]["nats"] = {"image": "nats:2-alpine", "healthcheck": {"test": ["CMD", "x"]}}
    grown["services"]["migrate-order"] = {
        **grown["services"]["migrate-product"],
        "image": "shop/order-service:local",
        "build": {"context": ".", "dockerfile": "order-service/Dockerfile"},
    }
    grown["services"]["order-service"] = {
        **grown["services"]["product-service"],
        "image": "shop/order-service:local",
        "build": {"context": ".", "dockerfile": "order-service/Dockerfile"},
        "depends_on": {
            "migrate-order": {"condition": "service_completed_successfully"},
            "nats": {"condition": "service_healthy"},
        },
    }
    grown["services"]["api-gateway"]["depends_on"]["order-service"] = {
        "condition": "service_healthy"
    }
    stages = plan.start_stages(grown)
    flat = [name for stage in stages for name in stage]
    assert flat.index("nats") < flat.index("order-service") < flat.index("api-gateway")
    assert flat.index("migrate-order") < flat.index("order-service")
    assert "migrate-order" in plan.one_shot_services(grown)
    assert plan.images_to_build(grown)["shop/order-service:local"] == (
        ".",
        "order-service/Dockerfile",
    )
    assert "order-service" in plan.built_services(grown)


def test_one_shot_steps_are_the_ones_run_to_completion(compose: dict[str, Any]) -> None:
    migrations = {f"migrate-{service.settings_prefix.lower()}" for service in WITH_DATABASE}
    assert plan.one_shot_services(compose) == {
        "gateway-keys",
        "auth-keys",
        "order-service-keys",
        *migrations,
    }


def test_a_dependency_cycle_is_refused() -> None:
    cyclic = {"services": {"a": {"depends_on": ["b"]}, "b": {"depends_on": ["a"]}}}
    with pytest.raises(plan.StackError, match="cycle"):
        plan.start_stages(cyclic)


def test_the_base_images_are_the_dockerfiles_from_and_the_services_not_built(
    compose: dict[str, Any],
) -> None:
    assert plan.base_images(compose, ROOT) == [
        "nats:2-alpine",
        "postgres:17-alpine",
        "python:3.11-slim-bookworm",
        "redis:7-alpine",
    ]


def test_from_lines_resolve_arg_defaults_and_skip_earlier_stages() -> None:
    dockerfile = "ARG BASE=debian:12\nFROM ${BASE} AS build\nFROM build\nFROM alpine:3\n"
    assert plan.from_images(dockerfile) == {"debian:12", "alpine:3"}


@pytest.mark.parametrize(
    ("environ", "published"),
    [
        pytest.param({}, "5000:5000", id="default"),
        pytest.param({"SHOP_PORT": "18123"}, "18123:5000", id="moved for the test"),
    ],
)
def test_the_published_port_follows_shop_port(
    environ: dict[str, str], published: str, tmp_path: Path
) -> None:
    compose = read(environ, tmp_path)
    assert compose["services"]["api-gateway"]["ports"] == [published]
    assert compose["services"]["auth-service"]["image"] == "shop/auth-service:local"


def test_the_nats_monitor_is_found_in_the_compose_file(compose: dict[str, Any]) -> None:
    assert plan.nats_monitor(compose) == ("nats", "8222")


def jsz(messages: int, *consumers: tuple[int, int]) -> dict[str, Any]:
    """JetStream's /jsz?streams=true&consumers=true, reduced to what the check reads."""
    return {
        "account_details": [
            {
                "stream_detail": [
                    {
                        "name": "ORDERS",
                        "state": {"messages": messages},
                        "consumer_detail": [
                            {"name": f"c{i}", "num_pending": pending, "num_ack_pending": unacked}
                            for i, (pending, unacked) in enumerate(consumers)
                        ],
                    }
                ]
            }
        ]
    }


@pytest.mark.parametrize(
    ("report", "settled"),
    [
        pytest.param({"account_details": []}, False, id="no stream yet"),
        pytest.param(jsz(0), False, id="no event yet"),
        pytest.param(jsz(1, (1, 0)), False, id="a consumer has not fetched it"),
        pytest.param(jsz(1, (0, 1)), False, id="a consumer has not acknowledged it"),
        pytest.param(jsz(1), True, id="published, no consumer"),
        pytest.param(jsz(2, (0, 0), (0, 0)), True, id="every consumer acknowledged"),
    ],
)
def test_events_count_as_through_once_published_and_acknowledged(
    report: dict[str, Any], settled: bool
) -> None:
    assert (plan.events_unsettled(report, "ORDERS") is None) is settled
