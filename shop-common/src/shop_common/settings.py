"""Settings every service shares; each service subclasses this in its own config.py."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shop_common.credential import GATEWAY

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ServiceSettings(BaseSettings):
    """Fields are the contract's environment variables, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", case_sensitive=False, frozen=True
    )

    log_level: LogLevel = "INFO"
    data_dir: Path = Path("data")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Only the project's own tests turn this on: it allows a bcrypt cost below 12.
    shop_testing: bool = False

    # Graceful shutdown (shop_common.shutdown): after SIGTERM, /ready is 503 and requests
    # are still served this long, so balancers move away; then in-flight requests get at
    # most shutdown_timeout_seconds. Their sum stays below the launcher's 10 s grace.
    shutdown_drain_seconds: float = Field(default=3.0, ge=0, le=60)
    shutdown_timeout_seconds: int = Field(default=5, gt=0, le=600)

    # Worker processes sharing the service's port (shop_common.workers), each with its
    # own database pool; 1 serves in the process itself. On 2 cores shared with
    # PostgreSQL and the gateway a second worker cost 3-28 % more CPU per request and
    # gained no capacity (docs/decisions/service-workers.md); SQLite allows only 1.
    web_concurrency: int = Field(default=1, ge=1, le=64)

    # PostgreSQL connections each process keeps (SQLite ignores it). A request that finds
    # them all busy waits for one rather than opening more: opening one costs far more
    # than the wait (docs/decisions/database-pool.md).
    database_pool_size: int = Field(default=16, ge=1, le=500)
    # Time budgets, nested inside the gateway's UPSTREAM_TIMEOUT (10 s): a request waits
    # at most pool_timeout for a connection, then 503; PostgreSQL cancels a statement
    # past statement_timeout and a lock wait past lock_timeout (rolled back, 503), so
    # work the gateway gave up on is never committed later (README "Production settings").
    database_pool_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    database_statement_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    database_lock_timeout_seconds: float = Field(default=3.0, gt=0, le=600)
    database_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Behind PgBouncer in transaction pooling mode: asyncpg's statement caches off and
    # the timeouts left to the database role (README Deploy).
    database_pgbouncer: bool = False

    # OpenTelemetry traces go over OTLP/HTTP to this collector (its /v1/traces); unset:
    # no tracing at all, opentelemetry is not even imported.
    otel_exporter_otlp_endpoint: str | None = None

    # NATS server(s) with JetStream for events, comma-separated (shop_common.events);
    # make run starts one on 127.0.0.1:5004 and sets it. Unset: no event runtime runs, and
    # events wait in the service's outbox.
    nats_url: str | None = None

    # Credential key pairs, one per minter (the gateway, and each service that calls
    # another): CREDENTIAL_KEYS_DIR/<name>/{private,public}.pem, the gateway's under
    # "gateway/" unless GATEWAY_*_KEY_FILE name them. make run creates them under DATA_DIR.
    credential_keys_dir: Path | None = None
    gateway_private_key_file: Path | None = None
    gateway_public_key_file: Path | None = None

    @property
    def gateway_private_key_path(self) -> Path:
        return self.gateway_private_key_file or self.credential_key_dir(GATEWAY) / "private.pem"

    @property
    def gateway_public_key_path(self) -> Path:
        return self.gateway_public_key_file or self.credential_key_dir(GATEWAY) / "public.pem"

    def credential_key_dir(self, minter: str) -> Path:
        root = self.credential_keys_dir or self.data_dir / "keys"
        return root / ("gateway" if minter == GATEWAY else minter)

    def credential_private_key_path(self, minter: str) -> Path:
        """The private key `minter` signs its credentials with."""
        if minter == GATEWAY:
            return self.gateway_private_key_path
        return self.credential_key_dir(minter) / "private.pem"

    def credential_public_key_path(self, minter: str) -> Path:
        """The public key that checks `minter`'s credentials."""
        if minter == GATEWAY:
            return self.gateway_public_key_path
        return self.credential_key_dir(minter) / "public.pem"
