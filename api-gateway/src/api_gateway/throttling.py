"""The contract's rate limits, applied where its order of errors puts them.

Per client address (429 at the gateway, before the body is read): login and register
each have their own limit, every other routed request the general one (never /health,
/ready, /metrics). Per email (login and register): the body is validated by auth-service
first, since 415/400/422 come before this 429, so the gateway does not answer it itself;
it tells the service in the credential (`era`, the seconds to wait) and the service
answers 429 after validating. Failed logins (a 401 from upstream) count per email;
every registration attempt does.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache

from api_gateway.config import Settings
from api_gateway.exceptions import TooManyRequests
from api_gateway.limiter import Limit, Limiter, Strategy
from api_gateway.policy import Throttle
from shop_common.emails import body_email
from shop_common.json_body import is_json_content_type
from shop_common.logging import log_security_event

# auth-service's pseudonym for an address in logs (auth_service/audit.py), so the two
# services' lines about one address match; public and fixed, not a secret.
_EMAIL_HASH_KEY = b"shop-auth/audit-email/v1"


def email_hash(email: str) -> str:
    message = email.encode("utf-8", "surrogatepass")
    return hmac.new(_EMAIL_HASH_KEY, message, hashlib.sha256).hexdigest()[:16]


@lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """What a per-address limit counts: an IPv4 address, or an IPv6 address's /64 (one
    host usually holds a whole /64, so single addresses would let it escape any limit)."""
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def email_of(body: bytes | None, content_type: bytes | None) -> str | None:
    """The account a login or register body names, as auth-service will read it (any
    JSON encoding it accepts, any spelling it normalises to that account), else None."""
    if not body or not is_json_content_type(content_type):
        return None  # auth-service answers 415 (or 422 for no body)
    return body_email(body)


class Throttling:
    def __init__(self, limiter: Limiter, settings: Settings) -> None:
        self.limiter = limiter
        moving, sliding = Strategy.MOVING_WINDOW, Strategy.SLIDING_WINDOW_COUNTER
        general = settings.rate_limit_per_address
        self._per_address: dict[Throttle, Limit | None] = {
            Throttle.GENERAL: Limit.of("address", general, sliding) if general else None,
            Throttle.LOGIN: Limit.of(
                "login-address", settings.rate_limit_login_per_address, moving
            ),
            Throttle.REGISTER: Limit.of(
                "register-address", settings.rate_limit_register_per_address, moving
            ),
        }
        self._login_email = Limit.of("login-email", settings.rate_limit_login_per_email, moving)
        self._register_email = Limit.of(
            "register-email", settings.rate_limit_register_per_email, moving
        )

    async def check_address(self, throttle: Throttle, address: str, route: str) -> None:
        """Count this request against its address's limit; TooManyRequests when reached."""
        limit = self._per_address[throttle]
        if limit is None:
            return
        wait = await self.limiter.hit(limit, address_key(address))
        if wait is not None:
            log_security_event(
                "rate_limited", limit=limit.name, client=address, route=route, retry_after=wait
            )
            raise TooManyRequests(wait)

    async def email_retry_after(self, throttle: Throttle, email: str, address: str) -> int | None:
        """Seconds to wait when this email's limit is reached (the login limit is only
        looked at here; failures count in `login_failed`), else None."""
        if throttle is Throttle.LOGIN:
            limit = self._login_email
            wait = await self.limiter.test(limit, email_hash(email))
        else:
            limit = self._register_email
            wait = await self.limiter.hit(limit, email_hash(email))
        if wait is not None:
            log_security_event(
                "rate_limited",
                limit=limit.name,
                email_hash=email_hash(email),
                client=address,
                retry_after=wait,
            )
        return wait

    async def login_failed(self, email: str) -> None:
        await self.limiter.hit(self._login_email, email_hash(email))
