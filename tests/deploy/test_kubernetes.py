"""deploy/k8s: every overlay renders with kustomize, validates, and is shaped as promised."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from shop_common.services import UPSTREAMS, WITH_DATABASE
from tests.deploy.conftest import (
    K8S,
    OLDEST_KUBERNETES,
    OVERLAYS,
    ROOT,
    SERVICES,
    Service,
    of_kind,
    pod_specs,
    read_dotenv,
    render,
    settings_names,
)

if TYPE_CHECKING:
    from tests.deploy.conftest import Dockerfile

Rendered = dict[str, list[dict[str, Any]]]
OVERLAY_PARAMS = [pytest.param(overlay.name, id=overlay.name) for overlay in OVERLAYS]
SERVICE_PARAMS = [pytest.param(service, id=service.name) for service in SERVICES]
AUTOSCALED = {"api-gateway", "product-service", "order-service"}
# Who may call each service (NetworkPolicy ingress): the gateway, and order-service for
# product-service's stock reservations.
CALLERS = {service.name: {"api-gateway"} for service in UPSTREAMS} | {
    "product-service": {"api-gateway", "order-service"},
}


def container_of(documents: list[dict[str, Any]], service: Service) -> dict[str, Any]:
    deployment = of_kind(documents, "Deployment")[service.name]
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions with In) against a pod's labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In is understood here"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pod_labels(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
    labels: dict[str, str] = of_kind(documents, kind)[name]["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
@pytest.mark.parametrize("version", [kubernetes_validate.latest_version(), OLDEST_KUBERNETES])
def test_every_rendered_resource_validates_strictly(
    rendered: Rendered, overlay: str, version: str
) -> None:
    for doc in rendered[overlay]:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {exc}") from None


def test_strict_validation_rejects_an_unknown_field(rendered: Rendered) -> None:
    deployment = of_kind(next(iter(rendered.values())), "Deployment")["api-gateway"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_each_service_runs_at_least_two_replicas(
    rendered: Rendered, overlay: str, service: Service
) -> None:
    documents = rendered[overlay]
    deployment = of_kind(documents, "Deployment")[service.name]
    autoscalers = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in of_kind(documents, "HorizontalPodAutoscaler").values()
    }
    if service.name in AUTOSCALED:
        hpa = autoscalers[service.name]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        # The autoscaler owns the count; a fixed value would be reset on every apply.
        assert "replicas" not in deployment["spec"]
    else:
        assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_probes_ask_ready_and_health_on_the_service_port(
    rendered: Rendered, overlay: str, service: Service
) -> None:
    container = container_of(rendered[overlay], service)
    assert container["ports"] == [
        {"name": "http", "containerPort": service.port, "protocol": "TCP"}
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env[f"{service.prefix}_PORT"] == str(service.port)
    assert env[f"{service.prefix}_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
@pytest.mark.parametrize("service", SERVICE_PARAMS)
def test_pods_drain_before_they_stop(rendered: Rendered, overlay: str, service: Service) -> None:
    documents = rendered[overlay]
    container = container_of(documents, service)
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = of_kind(documents, "Deployment")[service.name]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert 0 < pause < grace


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_every_container_has_requests_and_limits(rendered: Rendered, overlay: str) -> None:
    for name, spec in pod_specs(rendered[overlay]):
        for container in spec["containers"]:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), (name, bound)


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_every_pod_runs_non_root_with_a_read_only_root(
    rendered: Rendered, overlay: str, dockerfiles: dict[str, Dockerfile]
) -> None:
    image_uid = {
        service.name: int(dockerfiles[service.name].user().partition(":")[0])
        for service in SERVICES
    }
    for name, spec in pod_specs(rendered[overlay]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name
        for container in spec["containers"]:
            service = next(s for s in SERVICES if f"/{s.name}" in "/" + container["image"])
            assert pod["runAsUser"] == image_uid[service.name], name
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_only_the_gateway_service_is_exposed(rendered: Rendered, overlay: str) -> None:
    documents = rendered[overlay]
    services = of_kind(documents, "Service")
    assert set(services) == {service.name for service in SERVICES}
    for name, service in services.items():
        exposed = service["spec"].get("type", "ClusterIP") in ("LoadBalancer", "NodePort")
        exposed = exposed or bool(service["spec"].get("externalIPs"))
        if name != "api-gateway":
            assert not exposed, f"{name} is reachable from outside the cluster"
        port = next(s for s in SERVICES if s.name == name).port
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
    for ingress in of_kind(documents, "Ingress").values():
        backends = str(ingress["spec"])
        for internal in SERVICES:
            if internal.name != "api-gateway":
                assert internal.name not in backends


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_every_deployment_has_a_disruption_budget(rendered: Rendered, overlay: str) -> None:
    documents = rendered[overlay]
    budgets = of_kind(documents, "PodDisruptionBudget").values()
    for service in SERVICES:
        labels = pod_labels(documents, "Deployment", service.name)
        matching = [pdb for pdb in budgets if selects(pdb["spec"]["selector"], labels)]
        assert len(matching) == 1, service.name
        spec = matching[0]["spec"]
        assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable") == 1


def ingress_sources(documents: list[dict[str, Any]], labels: dict[str, str]) -> list[Any]:
    """Every `from` entry of every ingress rule that applies to pods with these labels."""
    sources: list[Any] = []
    for policy in of_kind(documents, "NetworkPolicy").values():
        spec = policy["spec"]
        if "Ingress" in spec.get("policyTypes", []) and selects(spec["podSelector"], labels):
            for rule in spec.get("ingress", []):
                sources.append(rule.get("from", "anyone"))
    return sources


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_network_policies_let_only_their_callers_reach_the_services(
    rendered: Rendered, overlay: str
) -> None:
    documents = rendered[overlay]
    policies = of_kind(documents, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    gateway = pod_labels(documents, "Deployment", "api-gateway")
    pods = {service.name: pod_labels(documents, "Deployment", service.name) for service in SERVICES}
    migrations = [pod_labels(documents, "Job", name) for name in of_kind(documents, "Job")]
    assert set(CALLERS) == set(pods) - {"api-gateway"}
    for name, callers in CALLERS.items():
        sources = ingress_sources(documents, pods[name])
        assert sources, f"nothing may reach {name}, not even the gateway"
        admitted: set[str] = set()
        for peers in sources:
            assert peers != "anyone", f"{name} is open to anyone"
            for peer in peers:
                assert set(peer) == {"podSelector"}, f"{name} is open to {peer}"
                admitted |= {
                    other for other, labels in pods.items() if selects(peer["podSelector"], labels)
                }
                for job in migrations:
                    assert not selects(peer["podSelector"], job), f"a Job may call {name}"
        assert admitted == callers, name
    assert "anyone" in ingress_sources(documents, gateway), "the gateway is the public entry"


def egress_ports(documents: list[dict[str, Any]], labels: dict[str, str]) -> set[int]:
    ports: set[int] = set()
    for policy in of_kind(documents, "NetworkPolicy").values():
        spec = policy["spec"]
        if "Egress" in spec.get("policyTypes", []) and selects(spec["podSelector"], labels):
            for rule in spec.get("egress", []):
                ports |= {port["port"] for port in rule.get("ports", [])}
    return ports


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_network_policies_let_pods_reach_only_what_they_use(
    rendered: Rendered, overlay: str
) -> None:
    documents = rendered[overlay]
    expected = {
        # DNS, every upstream's port, Redis.
        ("Deployment", "api-gateway"): {53, 6379} | {service.port for service in UPSTREAMS},
        ("Deployment", "auth-service"): {53, 5432, 6379},
        # NATS (4222): the outbox relays publish, product-service consumes ORDERS.
        ("Deployment", "product-service"): {53, 4222, 5432},
        ("Deployment", "order-service"): {53, 4222, 5002, 5432},
        # Each migration Job: DNS and PostgreSQL only.
        **{
            ("Job", f"{service.settings_prefix.lower()}-migrate"): {53, 5432}
            for service in WITH_DATABASE
        },
    }
    for (kind, name), ports in expected.items():
        assert egress_ports(documents, pod_labels(documents, kind, name)) == ports, name


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
@pytest.mark.parametrize(
    "service", [pytest.param(s, id=s.name) for s in SERVICES if s.has_database]
)
def test_a_job_migrates_each_database(rendered: Rendered, overlay: str, service: Any) -> None:
    documents = rendered[overlay]
    jobs = [
        job
        for job in of_kind(documents, "Job").values()
        if job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == service.name
    ]
    assert len(jobs) == 1
    job = jobs[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert container["image"] == container_of(documents, service)["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["parallelism"] == 1
    variable = f"{service.prefix}_DATABASE_URL"
    assert [item["name"] for item in container["env"]] == [variable]
    # The servers never migrate: they serve, and report not-ready until the Job is done.
    assert container_of(documents, service)["args"] == ["serve"]


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_keys_come_from_secrets_each_pod_mounts_read_only(rendered: Rendered, overlay: str) -> None:
    documents = rendered[overlay]
    mounts: dict[str, dict[str, str]] = {}
    for service in SERVICES:
        spec = of_kind(documents, "Deployment")[service.name]["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        container = spec["containers"][0]
        mounts[service.name] = {}
        for mount in container["volumeMounts"]:
            if mount["name"] in secrets:
                assert mount["readOnly"] is True
                assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
                mounts[service.name][secrets[mount["name"]]] = mount["mountPath"]
    # A service with no key of its own mounts the gateway's public key only.
    only_the_gateway_s = {"gateway-public-key": "/data/keys/gateway-public"}
    assert mounts == {service.name: only_the_gateway_s for service in SERVICES} | {
        "auth-service": {
            "auth-signing-keys": "/data/keys/auth",
            "gateway-public-key": "/data/keys/gateway-public",
        },
        # order-service's public key checks its calls to /stock; its private key is in
        # order-service-credential-key, which only order-service mounts.
        "product-service": {
            "gateway-public-key": "/data/keys/gateway-public",
            "order-service-public-key": "/data/keys/order-service",
        },
        "order-service": {
            "gateway-public-key": "/data/keys/gateway-public",
            "order-service-credential-key": "/data/keys/order-service",
        },
        "api-gateway": {"gateway-credential-key": "/data/keys/gateway"},
    }
    auth_env = {
        item["name"]: item.get("value") for item in container_of(documents, SERVICES[0])["env"]
    }
    assert auth_env["AUTH_KEYS_DIR"] == "/data/keys/auth"


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_settings_come_from_a_config_map_of_known_settings(
    rendered: Rendered, overlay: str
) -> None:
    documents = rendered[overlay]
    maps = [
        m
        for m in of_kind(documents, "ConfigMap").values()
        if m["metadata"]["name"].startswith("shop-settings")
    ]
    assert len(maps) == 1
    settings = maps[0]
    assert set(settings["data"]) <= settings_names()
    for _name, spec in pod_specs(documents):
        refs = [
            s["configMapRef"]["name"]
            for s in spec["containers"][0]["envFrom"]
            if "configMapRef" in s
        ]
        assert refs == [settings["metadata"]["name"]]
        for item in spec["containers"][0].get("env", []):
            assert item["name"] in settings_names(), item["name"]


def test_the_base_settings_are_the_env_example_defaults_plus_the_service_urls() -> None:
    base = read_dotenv(K8S / "base" / "settings.env")
    example = read_dotenv(ROOT / ".env.example")
    assert {key: base[key] for key in example} == example
    assert set(base) - set(example) == {
        *(service.upstream_setting for service in UPSTREAMS),
        "NATS_URL",  # an external JetStream (the NATS Helm chart or a managed service)
        "SIGNING_KEY_ACTIVATION_SECONDS",  # a Secret update takes ~1 min to reach every pod
        "DATABASE_POOL_SIZE",  # many pods share one PostgreSQL: the connection budget
    }


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_the_namespace_enforces_the_restricted_pod_security_standard(
    rendered: Rendered, overlay: str
) -> None:
    namespaces = of_kind(rendered[overlay], "Namespace")
    assert len(namespaces) == 1
    ((name, namespace),) = namespaces.items()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in rendered[overlay]:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == name


def test_the_monitoring_component_renders_on_top_of_an_overlay(tmp_path: Path) -> None:
    overlay = tmp_path / "with-monitoring"
    overlay.mkdir()
    production = os.path.relpath(K8S / "overlays" / "production", overlay)
    component = os.path.relpath(K8S / "components" / "allow-monitoring", overlay)
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{production}]\ncomponents: [{component}]\n"
    )
    policies = of_kind(render(overlay), "NetworkPolicy")
    rule = policies["allow-monitoring"]["spec"]["ingress"][0]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]


def pool_sizes(documents: list[dict[str, Any]], default: int) -> dict[str, int]:
    """Deployment -> DATABASE_POOL_SIZE of its pods: its container's own, or the settings'."""
    sizes = {}
    for name, deployment in of_kind(documents, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container.get("env", [])}
        sizes[name] = int(env.get("DATABASE_POOL_SIZE") or default)
    return sizes


def database_pods(documents: list[dict[str, Any]]) -> dict[str, int]:
    """Deployment -> how many of its pods can run at once: its replicas or its
    autoscaler's maximum, plus the rolling update's surge; only those with a database."""
    scalers = {
        doc["spec"]["scaleTargetRef"]["name"]: doc["spec"]["maxReplicas"]
        for doc in of_kind(documents, "HorizontalPodAutoscaler").values()
    }
    pods = {}
    for name, deployment in of_kind(documents, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if not any(item["name"].endswith("_DATABASE_URL") for item in container.get("env", [])):
            continue
        replicas = scalers.get(name, deployment["spec"].get("replicas", 1))
        surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        assert isinstance(surge, int), f"{name}: a percentage surge is not counted here"
        pods[name] = replicas + surge
    return pods


@pytest.mark.parametrize("overlay", OVERLAY_PARAMS)
def test_every_database_connection_that_can_exist_fits_in_max_connections(
    rendered: Rendered, overlay: str
) -> None:
    documents = rendered[overlay]
    maps = of_kind(documents, "ConfigMap").values()
    (budget,) = [m["data"] for m in maps if m["metadata"]["name"].startswith("database-budget")]
    (settings,) = [m["data"] for m in maps if m["metadata"]["name"].startswith("shop-settings")]
    pools = pool_sizes(documents, int(settings.get("DATABASE_POOL_SIZE", "16")))
    pods = database_pods(documents)
    assert set(pods) == {service.name for service in SERVICES if service.has_database}
    # Each pod: its request pool (the outbox relay, the event consumers and order-service's
    # sweeper share it) and the one connection its /ready probe keeps.
    serving = sum(count * (pools[name] + 1) for name, count in pods.items())
    migrating = len(of_kind(documents, "Job"))  # one connection each, before serving
    needed = serving + migrating + int(budget["superuser_reserved_connections"])
    assert needed <= int(budget["max_connections"]), (
        f"{overlay}: {pods} x ({pools} + 1) + {migrating} jobs + reserved = {needed}"
    )


def test_the_readme_states_the_budget_the_manifests_have(rendered: Rendered) -> None:
    """The README's table of the connection budget is the production overlay's."""
    documents = rendered["production"]
    maps = of_kind(documents, "ConfigMap").values()
    (settings,) = [m["data"] for m in maps if m["metadata"]["name"].startswith("shop-settings")]
    pools = pool_sizes(documents, int(settings.get("DATABASE_POOL_SIZE", "16")))
    readme = (ROOT / "README.md").read_text()
    for name, count in database_pods(documents).items():
        row = f"| {name} | {count} | {pools[name]} + 1 | {count * (pools[name] + 1)} |"
        assert row in readme, row


def test_the_budget_counts_an_autoscaler_maximum_and_the_surge() -> None:
    documents = [
        {
            "kind": "Deployment",
            "metadata": {"name": "product-service"},
            "spec": {
                "replicas": 2,
                "strategy": {"rollingUpdate": {"maxSurge": 1}},
                "template": {"spec": {"containers": [{"env": [{"name": "X_DATABASE_URL"}]}]}},
            },
        },
        {
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "product-service"},
            "spec": {"scaleTargetRef": {"name": "product-service"}, "maxReplicas": 10},
        },
    ]
    assert database_pods(documents) == {"product-service": 11}


def test_a_containers_own_pool_size_counts_over_the_settings() -> None:
    def deployment(name: str, env: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"env": env}]}}},
        }

    documents = [
        deployment("order-service", [{"name": "DATABASE_POOL_SIZE", "value": "8"}]),
        deployment("product-service", [{"name": "PRODUCT_PORT", "value": "5002"}]),
    ]
    assert pool_sizes(documents, 4) == {"order-service": 8, "product-service": 4}


def test_the_production_overlay_names_a_registry_image_for_every_pod(rendered: Rendered) -> None:
    """Every Deployment's and Job's image is mapped by the overlay's `images:` list: a
    service added to the base but not there would pull `shop/<name>` from Docker Hub."""
    for name, spec in pod_specs(rendered["production"]):
        for container in spec["containers"]:
            assert container["image"].startswith("registry.example.com/shop/"), (
                name,
                container["image"],
            )
