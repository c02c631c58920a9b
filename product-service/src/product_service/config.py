"""Settings: the only place product-service reads the environment."""

from __future__ import annotations

from pydantic import Field

from shop_common.settings import ServiceSettings

SERVICE_NAME = "product-service"


class Settings(ServiceSettings):
    product_host: str = "127.0.0.1"
    product_port: int = Field(default=5002, ge=1, le=65535)
    # None: a SQLite file under data_dir (see database_url).
    product_database_url: str | None = None

    @property
    def database_url(self) -> str:
        if self.product_database_url:
            return self.product_database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'product.db'}"
