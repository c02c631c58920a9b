"""CPU per request of the credential: mint at the caller plus verify at the service.

    .venv/bin/python shop-common/bench/credential_cost.py [N]

Compares the per-request credential (shop_common.credential, built by hand with orjson)
with the same claims through PyJWT, and with the earlier scheme that reused one token
per caller for 15 s and remembered verified tokens (read from git, commit aff7894).
Process CPU time, so the other load on a shared machine matters less than wall time.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shop_common.credential import (
    Caller,
    CredentialSigner,
    CredentialVerifier,
    RequestBinding,
    query_digest,
)

OLD_COMMIT = "aff7894"
KEY = Ed25519PrivateKey.generate()
CALLER = Caller(user_id="6f1c1f1e-9d2b-4c7a-8e6f-1b2c3d4e5f6a", role="USER", session_id="s" * 32)


def per_op_us(label: str, work: Callable[[int], None], n: int) -> float:
    work(min(n, 200))  # warm-up
    started = time.process_time()
    work(n)
    micros = (time.process_time() - started) / n * 1e6
    sys.stdout.write(f"{label:<58} {micros:8.1f} µs\n")
    return micros


def bindings(n: int) -> list[RequestBinding]:
    return [
        RequestBinding("GET", f"/products/{i:08d}-9d2b-4c7a-8e6f-1b2c3d4e5f6a", b"", f"rid-{i}")
        for i in range(n)
    ]


def new_scheme(n: int) -> None:
    signer = CredentialSigner(KEY)
    requests = bindings(n)
    tokens: list[str] = []

    def mint(count: int) -> None:
        tokens.clear()
        for request in requests[:count]:
            tokens.append(signer.mint(audience="product-service", caller=CALLER, request=request))

    def verify(count: int) -> None:
        verifier = CredentialVerifier(KEY.public_key(), "product-service")  # an empty jti cache
        for token, request in zip(tokens[:count], requests, strict=False):
            verifier.verify(token, request)

    per_op_us("per request, hand-built JWS: mint", mint, n)
    mint(n)
    per_op_us("per request, hand-built JWS: verify (+ binding, jti)", verify, n)


def pyjwt_scheme(n: int) -> None:
    requests = bindings(n)
    public = KEY.public_key()
    tokens: list[str] = []

    def mint(count: int) -> None:
        tokens.clear()
        now = int(time.time())
        for i, request in enumerate(requests[:count]):
            claims = {
                "iss": "api-gateway",
                "aud": "product-service",
                "iat": now,
                "exp": now + 30,
                "jti": f"j{i}",
                "rid": request.request_id,
                "htm": request.method,
                "htu": request.path,
                "sub": CALLER.user_id,
                "role": CALLER.role,
                "sid": CALLER.session_id,
            }
            if request.query:
                claims["htq"] = query_digest(request.query)
            tokens.append(jwt.encode(claims, KEY, algorithm="EdDSA"))

    def verify(count: int) -> None:
        for token in tokens[:count]:
            jwt.decode(
                token,
                public,
                algorithms=["EdDSA"],
                audience="product-service",
                issuer="api-gateway",
                options={"require": ["iss", "aud", "iat", "exp"]},
                leeway=5,
            )

    per_op_us("per request, PyJWT: encode", mint, n)
    mint(n)
    per_op_us("per request, PyJWT: decode (no binding check)", verify, n)


def old_scheme(n: int) -> None:
    """The reused credential of commit aff7894: a dict hit at each end on a warm caller."""
    try:
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:shop-common/src/shop_common/credential.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.stdout.write("(the earlier credential module is not in this git history: skipped)\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old_credential.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("old_credential", path)
        assert spec is not None and spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        sys.modules["old_credential"] = old
        spec.loader.exec_module(old)
    signer = old.CredentialSigner(KEY)
    verifier = old.CredentialVerifier(KEY.public_key(), "product-service")
    caller = old.Caller(CALLER.user_id, CALLER.role, CALLER.session_id)

    def both(count: int) -> None:
        for _ in range(count):
            verifier.verify(signer.mint(audience="product-service", caller=caller))

    per_op_us("reused per caller for 15 s (before): mint + verify, warm", both, n)
    per_op_us(
        "reused (before): a new caller each time, mint + verify",
        lambda count: (
            [
                verifier.verify(
                    signer.mint(audience="product-service", caller=old.Caller(f"u{i}", "USER"))
                )
                for i in range(count)
            ]
            and None
        ),
        n,
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    sys.stdout.write(f"{n:,} credentials per figure; CPU time per operation\n")
    new_scheme(n)
    pyjwt_scheme(n)
    old_scheme(n)


if __name__ == "__main__":
    main()
