"""Create the Secrets the Kubernetes manifests reference, as JSON for `kubectl apply -f -`.

    python deploy/k8s/make_secrets.py init   > secrets.json   # once per environment
    kubectl get secret auth-signing-keys -o json \\
      | python deploy/k8s/make_secrets.py rotate > rotated.json  # a new signing key

`init` reads AUTH_DATABASE_URL, PRODUCT_DATABASE_URL, ORDER_DATABASE_URL and REDIS_URL
(required) and ADMIN_EMAIL / ADMIN_PASSWORD (optional) from the environment, and makes
new keys (the gateway's and order-service's credential pairs, the first signing key) with
the services' own commands (`python -m shop_common.keys`, `python -m auth_service keys`),
so run it with the project's Python (`.venv/bin/python`). Nothing is written to disk
outside a temporary directory that is removed; the output holds secrets: pipe it to
kubectl or your secret store, do not commit it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DATABASE_URLS = ("AUTH_DATABASE_URL", "PRODUCT_DATABASE_URL", "ORDER_DATABASE_URL")
REQUIRED = (*DATABASE_URLS, "REDIS_URL")
# Services that call another service sign those calls with a key pair of their own:
# `<name>-credential-key` (private.pem, public.pem) for the caller's pods, mounted at
# /data/keys/<name>; `<name>-public-key` (public.pem) for the pods it calls, same path.
CALLING_SERVICES = ("order-service",)


def secret(name: str, data: dict[str, bytes], namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": "shop"},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode("ascii") for key, value in data.items()},
    }


def _run(*args: str, env: dict[str, str]) -> None:
    """A service command; its own message goes to stderr so stdout stays pure JSON."""
    result = subprocess.run(
        [sys.executable, "-m", *args], env=env, capture_output=True, text=True, check=False
    )
    sys.stderr.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"`python -m {' '.join(args)}` failed with status {result.returncode}")


def _command_env(keys_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_DIR": str(keys_dir.parent),
        "AUTH_KEYS_DIR": str(keys_dir),
    }


def _read_dir(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.pem"))}


def init(namespace: str | None) -> list[dict[str, Any]]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} in the environment")
    with tempfile.TemporaryDirectory(prefix="shop-secrets-") as tmp:
        root = Path(tmp)
        auth_keys = root / "auth"
        gateway = root / "gateway"
        env = _command_env(auth_keys)
        _run("shop_common.keys", str(gateway / "private.pem"), str(gateway / "public.pem"), env=env)
        for service in CALLING_SERVICES:
            pair = root / service
            _run("shop_common.keys", str(pair / "private.pem"), str(pair / "public.pem"), env=env)
        _run("auth_service", "keys", "init", env=env)
        public = (gateway / "public.pem").read_bytes()
        secrets = [
            secret(
                "shop-database",
                {name: os.environ[name].encode() for name in DATABASE_URLS},
                namespace,
            ),
            secret("shop-redis", {"REDIS_URL": os.environ["REDIS_URL"].encode()}, namespace),
            secret("auth-signing-keys", _read_dir(auth_keys), namespace),
            secret(
                "gateway-credential-key",
                {"private.pem": (gateway / "private.pem").read_bytes(), "public.pem": public},
                namespace,
            ),
            secret("gateway-public-key", {"public.pem": public}, namespace),
        ]
        for service in CALLING_SERVICES:
            private = (root / service / "private.pem").read_bytes()
            service_public = (root / service / "public.pem").read_bytes()
            secrets += [
                secret(
                    f"{service}-credential-key",
                    {"private.pem": private, "public.pem": service_public},
                    namespace,
                ),
                secret(f"{service}-public-key", {"public.pem": service_public}, namespace),
            ]
    admin = {name: os.environ.get(name, "") for name in ("ADMIN_EMAIL", "ADMIN_PASSWORD")}
    if all(admin.values()):
        data = {name: value.encode() for name, value in admin.items()}
        secrets.append(secret("auth-admin", data, namespace))
    return secrets


def rotate(current: dict[str, Any]) -> dict[str, Any]:
    """The auth-signing-keys Secret with a new key added and expired ones pruned."""
    if current.get("kind") != "Secret":
        raise SystemExit("rotate reads the current Secret: kubectl get secret ... -o json")
    metadata = current.get("metadata", {})
    with tempfile.TemporaryDirectory(prefix="shop-secrets-") as tmp:
        keys_dir = Path(tmp) / "auth"
        keys_dir.mkdir(mode=0o700)
        for name, value in (current.get("data") or {}).items():
            (keys_dir / Path(name).name).write_bytes(base64.b64decode(value))
        _run("auth_service", "keys", "rotate", env=_command_env(keys_dir))
        name = metadata.get("name", "auth-signing-keys")
        return secret(name, _read_dir(keys_dir), metadata.get("namespace"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_secrets.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init_parser = commands.add_parser("init", help="every Secret, with new keys")
    init_parser.add_argument("--namespace", default=None, help="e.g. shop (default: none)")
    commands.add_parser("rotate", help="read auth-signing-keys as JSON on stdin, add a key")
    args = parser.parse_args(argv)
    if args.command == "init":
        items = init(args.namespace)
        document: dict[str, Any] = {"apiVersion": "v1", "kind": "List", "items": items}
    else:
        document = rotate(json.load(sys.stdin))
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
