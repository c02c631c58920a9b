from __future__ import annotations

import ipaddress

import pytest

from api_gateway.cors import CorsPolicy
from api_gateway.headers import ForwardedFor, RequestHeaders, bearer_token


def test_identity_credential_and_hop_by_hop_headers_are_never_forwarded() -> None:
    raw = [
        (b"host", b"gateway.example"),
        (b"accept", b"application/json"),
        (b"authorization", b"Bearer abc"),
        (b"x-gateway-credential", b"forged"),
        (b"x-user-id", b"someone"),
        (b"x-user-role", b"ADMIN"),
        (b"x-forwarded-user", b"admin"),
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"x-real-ip", b"1.2.3.4"),
        (b"x-auth-request-user", b"admin"),
        (b"remote-user", b"admin"),
        (b"forwarded", b"for=1.2.3.4"),
        (b"connection", b"keep-alive, x-secret-hop"),
        (b"x-secret-hop", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"trailer", b"x-checksum"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"proxy-authorization", b"Basic x"),
        (b"expect", b"100-continue"),
        (b"content-length", b"12"),
        (b"x-request-id", b"client-id"),
        (b"if-match", b'"v1"'),
        (b"content-type", b"application/json"),
    ]
    headers = RequestHeaders(raw)
    assert headers.forward == [
        (b"accept", b"application/json"),
        (b"if-match", b'"v1"'),
        (b"content-type", b"application/json"),
    ]
    assert headers.authorization == b"Bearer abc"
    assert headers.request_id == b"client-id"
    assert headers.content_length == b"12"
    assert headers.transfer_encoding == b"chunked"
    assert headers.host == b"gateway.example"


def test_the_first_of_repeated_authorization_headers_counts() -> None:
    headers = RequestHeaders([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")])
    assert headers.authorization == b"Bearer a"
    assert headers.forward == []


@pytest.mark.parametrize(
    ("value", "token"),
    [
        pytest.param(b"Bearer abc.def.ghi", "abc.def.ghi", id="bearer"),
        pytest.param(b"bearer abc", "abc", id="lower-case-scheme"),
        pytest.param(b"BEARER   abc  ", "abc", id="extra-spaces"),
        pytest.param(b"Basic dXNlcjpwYXNz", None, id="basic"),
        pytest.param(b"Bearer", None, id="no-token"),
        pytest.param(b"Bearer ", None, id="empty-token"),
        pytest.param(b"Bearer a b", None, id="two-tokens"),
        pytest.param(b"abc.def.ghi", None, id="no-scheme"),
        pytest.param("Bearer é".encode("latin-1"), None, id="not-ascii"),
    ],
)
def test_bearer_token_parsing(value: bytes, token: str | None) -> None:
    assert bearer_token(value) == token


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("trusted", "peer", "sent", "client", "chain"),
    [
        pytest.param((), "203.0.113.7", None, "203.0.113.7", b"203.0.113.7", id="direct"),
        pytest.param(
            (), "203.0.113.7", b"1.2.3.4", "203.0.113.7", b"203.0.113.7", id="untrusted-claim"
        ),
        pytest.param(
            TRUSTED,
            "203.0.113.7",
            b"1.2.3.4",
            "203.0.113.7",
            b"203.0.113.7",
            id="claim-from-untrusted-peer",
        ),
        pytest.param(
            TRUSTED,
            "10.0.0.2",
            b"198.51.100.9",
            "198.51.100.9",
            b"198.51.100.9, 10.0.0.2",
            id="trusted-proxy",
        ),
        pytest.param(
            TRUSTED,
            "10.0.0.2",
            b"6.6.6.6, 198.51.100.9, 10.0.0.3",
            "198.51.100.9",
            b"6.6.6.6, 198.51.100.9, 10.0.0.3, 10.0.0.2",
            id="spoofed-left-part-ignored",
        ),
        pytest.param(
            TRUSTED, "10.0.0.2", b"garbage", "10.0.0.2", b"garbage, 10.0.0.2", id="garbage"
        ),
    ],
)
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    trusted: tuple[ipaddress.IPv4Network, ...],
    peer: str,
    sent: bytes | None,
    client: str,
    chain: bytes,
) -> None:
    assert ForwardedFor(trusted).client_and_chain(peer, sent) == (client, chain)


def test_cors_lists_origins_or_allows_any() -> None:
    listed = CorsPolicy(["https://shop.example"])
    assert listed.enabled
    assert listed.allows(b"https://shop.example")
    assert not listed.allows(b"https://evil.example")
    assert (b"vary", b"Origin") in listed.response_headers(b"https://shop.example")
    anyone = CorsPolicy(["*"])
    assert anyone.allows(b"https://evil.example")
    assert (b"access-control-allow-origin", b"*") in anyone.response_headers(b"https://x")
    assert not CorsPolicy([]).enabled
