"""`python -m api_gateway [serve]`: the gateway on uvicorn (uvloop, httptools)."""

from __future__ import annotations

import argparse

from api_gateway.config import Settings
from shop_common.logging import configure_logging
from shop_common.shutdown import serve as serve_draining


def serve(settings: Settings) -> None:
    configure_logging("api-gateway", settings.log_level)
    serve_draining(
        "api_gateway.main:create_app",
        drain_seconds=settings.shutdown_drain_seconds,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        http="httptools",
        ws="none",  # no websockets in the API: an Upgrade request is plain HTTP
        lifespan="on",
        access_log=False,  # the gateway writes its own line per request, with its request id
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For is believed only per TRUSTED_PROXIES
        log_config=None,
        log_level=settings.log_level.lower(),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="api-gateway", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.parse_args(argv)
    serve(Settings())


if __name__ == "__main__":
    main()
