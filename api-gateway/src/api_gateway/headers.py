"""Request headers in one pass: what the gateway reads, and what it may forward.

A client never chooses what the services trust: its Authorization, any identity or
credential header, forwarding headers it has no right to set, and hop-by-hop headers
are dropped here; the gateway adds its own versions afterwards.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from api_gateway.config import Network

# Read by the gateway, never forwarded as sent.
_CAPTURED = {
    b"authorization": 0,
    b"x-request-id": 1,
    b"content-length": 2,
    b"transfer-encoding": 3,
    b"origin": 4,
    b"x-forwarded-for": 5,
    b"x-forwarded-proto": 6,
    b"host": 7,
    b"connection": 8,
    b"access-control-request-method": 9,
    b"access-control-request-headers": 10,
    b"content-type": 11,  # read (login and register bodies) and forwarded
}
_FORWARDED_FOR = 5
_CONTENT_TYPE = 11
DROPPED = frozenset(
    {
        # hop-by-hop (RFC 9110 7.6.1) and framing the gateway redoes itself
        b"keep-alive",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
        # identity a client must not assert: services trust only the gateway credential
        b"forwarded",
        b"remote-user",
    }
)
DROPPED_PREFIXES = (
    b"proxy-",
    b"x-forwarded-",
    b"x-gateway-",
    b"x-user",
    b"x-auth",
    b"x-remote-",
    b"x-real-",
    b"x-original-",
    b"x-client-",
)


class RequestHeaders:
    """The headers the gateway reads, and the list it may forward upstream."""

    __slots__ = (
        "access_control_headers",
        "access_control_method",
        "authorization",
        "connection",
        "content_length",
        "content_type",
        "forward",
        "forwarded_for",
        "forwarded_proto",
        "host",
        "origin",
        "request_id",
        "transfer_encoding",
    )

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        found: list[bytes | None] = [None] * 12
        forward: list[tuple[bytes, bytes]] = []
        captured = _CAPTURED.get
        for name, value in raw:
            slot = captured(name)
            if slot is not None:
                previous = found[slot]
                if previous is None:  # the first of repeated headers counts...
                    found[slot] = value
                elif slot == _FORWARDED_FOR:
                    # ...except X-Forwarded-For, whose lines are one list (RFC 9110 5.3):
                    # a proxy appending its own line must not leave the client's first.
                    found[slot] = previous + b", " + value
                if slot == _CONTENT_TYPE:
                    forward.append((name, value))
            elif name not in DROPPED and not name.startswith(DROPPED_PREFIXES):
                forward.append((name, value))
        (
            self.authorization,
            self.request_id,
            self.content_length,
            self.transfer_encoding,
            self.origin,
            self.forwarded_for,
            self.forwarded_proto,
            self.host,
            self.connection,
            self.access_control_method,
            self.access_control_headers,
            self.content_type,
        ) = found
        if self.connection is not None:
            # Headers named in Connection are hop-by-hop too (RFC 9110 7.6.1).
            listed = {token.strip().lower() for token in self.connection.split(b",")}
            forward = [(name, value) for name, value in forward if name not in listed]
        self.forward = forward


def bearer_token(authorization: bytes) -> str | None:
    """The token of `Bearer <token>` (scheme case-insensitive), else None."""
    scheme, _, token = authorization.partition(b" ")
    token = token.strip(b" ")
    if scheme.lower() != b"bearer" or not token or b" " in token:
        return None
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return None


class ClientAddress(NamedTuple):
    """Who the client is (the rate limits' key), and what to tell the upstream."""

    address: str | None
    forwarded_for: bytes | None  # X-Forwarded-For to send upstream
    via_trusted_proxy: bool  # the peer is a trusted proxy: its X-Forwarded-Proto counts


class ForwardedFor:
    """Who the client is, believing X-Forwarded-For only from trusted proxies."""

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self._trusted = trusted
        self._is_trusted = lru_cache(maxsize=1024)(self._check)

    def _check(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def client_and_chain(
        self, peer: str | None, forwarded_for: bytes | None
    ) -> tuple[str | None, bytes | None]:
        """(client address, X-Forwarded-For to send upstream).

        The client is the peer, unless the peer is a trusted proxy: then the right-most
        address of X-Forwarded-For that is not itself a trusted proxy.
        """
        if peer is None:
            return None, None
        own = peer.encode("ascii", "replace")
        if forwarded_for is None or not self._trusted or not self._is_trusted(peer):
            return peer, own
        hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",")]
        client = peer
        for hop in reversed(hops):  # the rightmost address no trusted proxy vouches for
            if not _is_address(hop):
                break  # garbage: believe nothing further left
            client = hop
            if not self._is_trusted(hop):
                break
        return client, forwarded_for + b", " + own

    def resolve(self, peer: str | None, forwarded_for: bytes | None) -> ClientAddress:
        address, chain = self.client_and_chain(peer, forwarded_for)
        return ClientAddress(address, chain, self.trusts(peer))

    def trusts(self, peer: str | None) -> bool:
        return peer is not None and bool(self._trusted) and self._is_trusted(peer)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
