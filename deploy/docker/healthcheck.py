"""Container HEALTHCHECK: GET /health on the port the service really listens on.

Usage: python healthcheck.py PREFIX DEFAULT_PORT, e.g. `AUTH 5001`. It reads the same
PREFIX_HOST / PREFIX_PORT settings as the service, so moving AUTH_PORT moves the check
too. Exit 0 on a 200, 1 otherwise (Docker's convention). Standard library only.
"""

from __future__ import annotations

import os
import sys
import urllib.request

# The service binds an any-address inside the container; the check goes through loopback.
_ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def health_url(prefix: str, default_port: str) -> str:
    host = os.environ.get(f"{prefix}_HOST", "127.0.0.1").strip()
    host = _ANY_ADDRESS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    port = os.environ.get(f"{prefix}_PORT", default_port).strip() or default_port
    return f"http://{host}:{port}/health"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: healthcheck.py PREFIX DEFAULT_PORT", file=sys.stderr)  # noqa: T201
        return 2
    url = health_url(argv[0], argv[1])
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)  # noqa: T201
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
