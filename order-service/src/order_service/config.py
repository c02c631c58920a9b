"""Settings: the only place order-service reads the environment."""

from __future__ import annotations

from pydantic import Field

from shop_common.settings import ServiceSettings

SERVICE_NAME = "order-service"
PRODUCT_SERVICE = "product-service"


class Settings(ServiceSettings):
    order_host: str = "127.0.0.1"
    order_port: int = Field(default=5003, ge=1, le=65535)
    # None: a SQLite file under data_dir (see database_url).
    order_database_url: str | None = None
    # Seconds an order may wait for payment before it expires (the contract's default).
    order_payment_timeout: float = Field(default=1800.0, gt=0, le=366 * 86400)

    # Where product-service listens (stock reservations).
    product_host: str = "127.0.0.1"
    product_port: int = Field(default=5002, ge=1, le=65535)
    product_service_url: str | None = None
    # A reservation call's budget: well inside the gateway's UPSTREAM_TIMEOUT (10 s), so
    # a checkout whose reservation did not answer is given up (503) before the gateway
    # gives up on the checkout.
    stock_timeout_seconds: float = Field(default=4.0, gt=0, le=60)

    # The sweeper: how often it looks for orders to expire and checkouts to give up, and
    # how old an unfinished checkout must be before it is given up (its process died
    # between reserving and answering). Above any request's whole budget, so a checkout
    # still running is never taken from under it.
    sweep_interval_seconds: float = Field(default=5.0, gt=0, le=600)
    abandoned_checkout_seconds: float = Field(default=30.0, ge=15, le=3600)
    # Idempotency keys are kept at least 24 hours (the contract), then purged.
    idempotency_retention_seconds: float = Field(default=48 * 3600.0, ge=24 * 3600, le=90 * 86400)

    @property
    def database_url(self) -> str:
        if self.order_database_url:
            return self.order_database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'order.db'}"

    @property
    def product_url(self) -> str:
        if self.product_service_url:
            return self.product_service_url.split(",")[0].strip()
        host = f"[{self.product_host}]" if ":" in self.product_host else self.product_host
        return f"http://{host}:{self.product_port}"
