"""The one list of the system's deployables: name, package, port and the settings that
name them. The launcher, the gateway's defaults, the bench and the tests read it;
tests/deploy/test_service_list.py checks that the workspace, the Dockerfiles, compose and
the manifests agree with it (docs/adding-a-service.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One deployable. `name` is its folder, image, compose service, Kubernetes name and
    the audience of the credentials minted for it."""

    name: str
    package: str
    # `<PREFIX>_HOST` / `<PREFIX>_PORT` are where it listens (AUTH_PORT, GATEWAY_PORT).
    settings_prefix: str
    port: int
    # Its database URL setting (unset: a SQLite file `<prefix>.db` under DATA_DIR) and
    # its Alembic version table; None for a service without a database.
    database_setting: str | None = None
    version_table: str | None = None
    # The gateway's setting that lists its instances (comma-separated URLs); None for the
    # gateway itself.
    upstream_setting: str | None = None

    @property
    def port_setting(self) -> str:
        return f"{self.settings_prefix}_PORT"

    @property
    def host_setting(self) -> str:
        return f"{self.settings_prefix}_HOST"

    @property
    def sqlite_file(self) -> str:
        """Its database under DATA_DIR when `database_setting` is unset."""
        return f"{self.settings_prefix.lower()}.db"


GATEWAY = ServiceSpec("api-gateway", "api_gateway", "GATEWAY", 5000)
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "auth-service",
        "auth_service",
        "AUTH",
        5001,
        database_setting="AUTH_DATABASE_URL",
        version_table="auth_alembic_version",
        upstream_setting="AUTH_SERVICE_URL",
    ),
    ServiceSpec(
        "product-service",
        "product_service",
        "PRODUCT",
        5002,
        database_setting="PRODUCT_DATABASE_URL",
        version_table="product_alembic_version",
        upstream_setting="PRODUCT_SERVICE_URL",
    ),
    ServiceSpec(
        "order-service",
        "order_service",
        "ORDER",
        5003,
        database_setting="ORDER_DATABASE_URL",
        version_table="order_alembic_version",
        upstream_setting="ORDER_SERVICE_URL",
    ),
    GATEWAY,
)
# The services behind the gateway (every one but the gateway itself).
UPSTREAMS: tuple[ServiceSpec, ...] = tuple(s for s in SERVICES if s.upstream_setting)
# The services that keep a database, in the order the launcher migrates them.
WITH_DATABASE: tuple[ServiceSpec, ...] = tuple(s for s in SERVICES if s.database_setting)


def service_named(name: str) -> ServiceSpec:
    """The entry called `name`; KeyError when there is none."""
    for service in SERVICES:
        if service.name == name:
            return service
    raise KeyError(name)
