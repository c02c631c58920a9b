"""CORS from CORS_ORIGINS: empty means no CORS headers at all (no cross-origin access)."""

from __future__ import annotations

from collections.abc import Sequence

# Headers a browser script may read from our responses.
EXPOSED = b"ETag, Location, Retry-After, WWW-Authenticate, X-Request-ID"
MAX_AGE = b"600"


class CorsPolicy:
    def __init__(self, origins: Sequence[str]) -> None:
        self.enabled = bool(origins)
        self._any = "*" in origins
        self._origins = frozenset(origin.encode("ascii") for origin in origins if origin != "*")

    def allows(self, origin: bytes) -> bool:
        return self._any or origin in self._origins

    def response_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """For an allowed origin; the caller checks `allows` first."""
        if self._any:
            return [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-expose-headers", EXPOSED),
            ]
        return [
            (b"access-control-allow-origin", origin),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSED),
        ]

    def preflight_headers(
        self, origin: bytes, allow_methods: str, requested_headers: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        headers = self.response_headers(origin)
        headers.append((b"access-control-allow-methods", allow_methods.encode("ascii")))
        if requested_headers:
            # No cookies are ever involved (bearer tokens only), so any header may be sent.
            headers.append((b"access-control-allow-headers", requested_headers))
        headers.append((b"access-control-max-age", MAX_AGE))
        return headers
