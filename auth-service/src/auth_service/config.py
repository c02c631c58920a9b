"""Settings: the only place auth-service reads its environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from shop_common.settings import ServiceSettings

SERVICE_NAME = "auth-service"

PRODUCTION_MIN_BCRYPT_ROUNDS = 12
MAX_ACCESS_TOKEN_TTL_SECONDS = 900
DAY = 24 * 3600
# Revoked sids are kept this long past an access token's lifetime: room for clock skew
# between hosts and for the verifiers' leeway on `exp`.
REVOCATION_MARGIN_SECONDS = 120


class Settings(ServiceSettings):
    """Fields are the contract's environment variables, lower-cased."""

    auth_host: str = "127.0.0.1"
    auth_port: int = Field(default=5001, ge=0, le=65535)
    auth_database_url: str | None = None

    bcrypt_rounds: int = Field(default=PRODUCTION_MIN_BCRYPT_ROUNDS, ge=4, le=31)
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    # Ed25519 signing keys, one PEM file per key id; shared by every replica.
    auth_keys_dir: Path | None = None
    # How often each replica re-reads the key directory, and how old a new key must be
    # before it signs: every replica has published it by then, so no gateway ever meets
    # a token whose kid the JWKS it fetches does not list.
    signing_key_reload_seconds: float = Field(default=15.0, gt=0, le=30)
    signing_key_activation_seconds: float = Field(default=20.0, ge=0, le=600)

    jwt_issuer: str = "shop-auth"
    jwt_audience: str = "shop-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=MAX_ACCESS_TOKEN_TTL_SECONDS)
    # A session dies when unused for the idle lifetime or when the absolute one is reached.
    refresh_idle_seconds: int = Field(default=14 * DAY, ge=60)
    refresh_absolute_seconds: int = Field(default=30 * DAY, ge=60)

    # With Redis, a background task copies revoked sessions into a sorted set that the
    # gateways poll (docs/decisions/auth-revocation.md); without it they poll us.
    # Secret: the URL may carry the Redis password.
    redis_url: SecretStr | None = None
    revocation_redis_key: str = Field(default="shop:revoked-sessions", min_length=1, max_length=200)
    revocation_publish_seconds: float = Field(default=1.0, gt=0, le=2)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        # Empty counts as unset: compose files pass `REDIS_URL: ${REDIS_URL:-}` through.
        if value == "":
            return None
        if isinstance(value, str):
            # Imported only with a REDIS_URL: redis-py costs a process ~7 MB.
            from redis.asyncio.connection import parse_url

            try:
                parse_url(value)  # refuses the schemes and ports redis-py cannot use
            except ValueError:
                # Not the parser's message: it could repeat a password from the URL.
                raise ValueError("must be a valid redis://, rediss:// or unix:// URL") from None
        return value

    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if self.bcrypt_rounds < PRODUCTION_MIN_BCRYPT_ROUNDS and not self.shop_testing:
            raise ValueError(
                f"BCRYPT_ROUNDS={self.bcrypt_rounds} is below {PRODUCTION_MIN_BCRYPT_ROUNDS}; "
                "lower costs are only allowed in the project's tests (SHOP_TESTING=true)"
            )
        if self.refresh_idle_seconds > self.refresh_absolute_seconds:
            raise ValueError("REFRESH_IDLE_SECONDS must not exceed REFRESH_ABSOLUTE_SECONDS")
        return self

    @property
    def database_url(self) -> str:
        return self.auth_database_url or f"sqlite+aiosqlite:///{self.data_dir / 'auth.db'}"

    @property
    def revocation_retention_seconds(self) -> int:
        """How far back revocations matter: no access token outlives this."""
        return self.access_token_ttl_seconds + REVOCATION_MARGIN_SECONDS

    @property
    def keys_dir(self) -> Path:
        return self.auth_keys_dir or self.data_dir / "keys" / "auth"
