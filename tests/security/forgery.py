"""Hand-made JWTs: what an attacker sends, built byte by byte (no library refuses to).

`sign_eddsa` with the system's real signing key (read from its data directory, which an
attacker does not have) makes tokens whose only fault is the one under test: a wrong
`iss`, a past `exp`. Without the real key, a test would only show the signature check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.keys import load_private_key


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(document: dict[str, Any]) -> str:
    return b64url(json.dumps(document, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(header, claims, signature segment) of a compact JWS, unverified."""
    header, claims, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(claims)), signature


def with_signature(header: dict[str, Any], claims: dict[str, Any], signature: str) -> str:
    """The given header and claims with a signature taken from elsewhere (or none)."""
    return f"{_segment(header)}.{_segment(claims)}.{signature}"


def sign_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def sign_eddsa(header: dict[str, Any], claims: dict[str, Any], key: Ed25519PrivateKey) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def real_signing_key(data_dir: Path, kid: str) -> Ed25519PrivateKey:
    """auth-service's private key for `kid`, from the system's key directory."""
    return load_private_key(data_dir / "keys" / "auth" / f"{kid}.pem")
