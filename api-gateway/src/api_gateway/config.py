"""Gateway settings: the only place the gateway reads the environment."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, create_model, field_validator
from pydantic_settings import NoDecode

from api_gateway.bulkhead import DEFAULT_SEARCH_CONCURRENCY
from api_gateway.ratelimit import Rate, parse_optional_rate, parse_rate
from shop_common.services import GATEWAY, UPSTREAMS, ServiceSpec, service_named
from shop_common.settings import ServiceSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def _rate(value: Any) -> Any:
    return parse_rate(value) if isinstance(value, str) else value


def _optional_rate(value: Any) -> Any:
    return parse_optional_rate(value) if isinstance(value, str) else value


def _split(value: Any) -> Any:
    """Comma-separated environment values become tuples; empty items are dropped."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


RateSetting = Annotated[Rate, NoDecode, BeforeValidator(_rate)]
OptionalRateSetting = Annotated[Rate | None, NoDecode, BeforeValidator(_optional_rate)]
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]


def local_url(host: str, port: int) -> str:
    """Where to reach a service that listens on host:port (an any-address means this host)."""
    host = _ANY_ADDRESS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def check_upstream_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url!r}: an upstream URL takes no query, fragment or user info")
    parts.port  # noqa: B018 - raises ValueError on a malformed port
    return url.rstrip("/")


def _check_upstream_urls(urls: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(check_upstream_url(url) for url in urls)


UpstreamUrls = Annotated[CommaList, AfterValidator(_check_upstream_urls)]


def _upstream_field_names(service: ServiceSpec) -> tuple[str, str, str]:
    """Its listen settings (AUTH_HOST, AUTH_PORT) and its URL list (AUTH_SERVICE_URL), as
    the gateway's field names."""
    if service.upstream_setting is None:
        raise KeyError(f"{service.name} is not behind the gateway")
    return (
        service.host_setting.lower(),
        service.port_setting.lower(),
        service.upstream_setting.lower(),
    )


def _upstream_fields() -> dict[str, Any]:
    """Three settings per upstream in shop_common.services: a service added there is
    routed to with no edit here. Upstreams: explicit URLs (comma-separated for several
    instances), else derived from the service's own listen settings, so AUTH_PORT alone
    moves the service and the gateway's target."""
    fields: dict[str, Any] = {}
    for service in UPSTREAMS:
        host, port, urls = _upstream_field_names(service)
        fields[host] = (str, "127.0.0.1")
        fields[port] = (int, Field(default=service.port, ge=1, le=65535))
        fields[urls] = (UpstreamUrls, ())
    return fields


if TYPE_CHECKING:
    _WithUpstreams = ServiceSettings
else:
    _WithUpstreams = create_model(
        "_WithUpstreams", __base__=ServiceSettings, __module__=__name__, **_upstream_fields()
    )


class Settings(_WithUpstreams):
    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(default=GATEWAY.port, ge=1, le=65535)

    upstream_timeout: float = Field(default=10.0, gt=0, le=600)
    # How often every instance's /ready is probed, so the balancer skips the ones that
    # are down or draining (under the services' 3 s drain, with room for one miss).
    upstream_probe_seconds: float = Field(default=1.0, gt=0, le=60)
    # Product searches (`q`) this gateway lets run at once; past it 503 at once, so a
    # search flood cannot take the product-service's database from its other routes.
    search_concurrency: int = Field(default=DEFAULT_SEARCH_CONCURRENCY, ge=1, le=10000)

    # Limits at the edge (README "Security"; docs/decisions/gateway-edge-server.md).
    # Request line and header fields together, and how many fields: past either, 431.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_header_fields: int = Field(default=100, ge=10, le=10_000)
    # A head must be complete this long after the connection opened (or the previous
    # response); a body this long after its head; an idle connection closes after
    # keepalive_timeout_seconds (the header timeout bounds it too).
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    keepalive_timeout_seconds: float = Field(default=5.0, gt=0, le=75)
    # Client connections at once (further capped by the descriptor limit): past it the
    # oldest idle connection is closed for a newcomer, or the newcomer gets 503.
    max_connections: int = Field(default=10_000, ge=1, le=1_000_000)

    cors_origins: CommaList = ()
    trusted_proxies: CommaList = ()
    # Who may read /metrics (addresses or CIDRs, the client as TRUSTED_PROXIES tell it);
    # empty: everyone. Others get 404, as if there were no such path.
    metrics_allowed_networks: CommaList = ()
    # Shared store for rate limits and revocations; unset: in-process limits and the
    # auth-service poll for revocations.
    redis_url: str | None = None
    # Connect and command timeout: past it, limits fall back to in-process at once.
    redis_timeout: float = Field(default=0.25, gt=0, le=10)
    # Prefix of the rate-limit keys in Redis (tests use their own).
    rate_limit_key_prefix: str = Field(default="shop:ratelimit", min_length=1)
    # The sorted set auth-service's revocation publisher keeps (member sid, score
    # revoked_at), the same setting and default as auth-service's.
    revocation_redis_key: str = Field(default="shop:revoked-sessions", min_length=1)
    # How often revocations are read (from Redis, else from auth-service).
    revocation_poll_seconds: float = Field(default=1.0, gt=0, le=2)
    # The access-token lifetime (auth-service's ACCESS_TOKEN_TTL_SECONDS): a revoked
    # session is remembered this long (plus a margin), since no token of it lives longer.
    access_token_ttl_seconds: int = Field(default=900, ge=1, le=86400)

    rate_limit_login_per_email: RateSetting = Rate(10, 15 * 60)
    rate_limit_login_per_address: RateSetting = Rate(30, 60)
    rate_limit_register_per_email: RateSetting = Rate(5, 3600)
    rate_limit_register_per_address: RateSetting = Rate(20, 3600)
    rate_limit_per_address: OptionalRateSetting = Rate(1200, 60)

    jwt_issuer: str = "shop-auth"
    jwt_audience: str = "shop-api"
    # An unknown kid refetches the JWKS, but at most once per this many seconds.
    jwks_refetch_interval: float = Field(default=5.0, ge=0)
    # The key set is refetched in the background this often, so retired keys drop out.
    jwks_max_age: float = Field(default=60.0, gt=0)
    token_cache_size: int = Field(default=10_000, ge=0)
    ready_cache_seconds: float = Field(default=1.0, ge=0)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: str | None) -> str | None:
        if url is not None and not url.strip():
            return None  # REDIS_URL= (empty) means unset
        if url is not None and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"{url!r} is not a redis://, rediss:// or unix:// URL")
        return url

    @field_validator("trusted_proxies", "metrics_allowed_networks")
    @classmethod
    def _check_proxies(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            ipaddress.ip_network(entry, strict=False)
        return entries

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or parts.path):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example")
        return tuple(origin.rstrip("/") for origin in origins)

    def upstream_urls(self, name: str) -> tuple[str, ...]:
        """Where the instances of the upstream called `name` (shop_common.services) are."""
        host, port, urls = _upstream_field_names(service_named(name))
        listed: tuple[str, ...] = getattr(self, urls)
        return listed or (local_url(getattr(self, host), getattr(self, port)),)

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies)

    @property
    def metrics_networks(self) -> tuple[Network, ...]:
        return tuple(
            ipaddress.ip_network(entry, strict=False) for entry in self.metrics_allowed_networks
        )
