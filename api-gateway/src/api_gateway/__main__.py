"""`python -m api_gateway [serve]`: the gateway on uvicorn (uvloop) with its own
connection protocol, which holds the limits at the edge (edge_protocol.py)."""

from __future__ import annotations

import argparse
import logging

from api_gateway.config import Settings
from api_gateway.edge import Connections, EdgeLimits, raise_descriptor_limit
from api_gateway.edge_protocol import protocol_factory
from shop_common.logging import configure_logging
from shop_common.shutdown import serve as serve_draining

logger = logging.getLogger("api_gateway")


def serve(settings: Settings) -> None:
    configure_logging("api-gateway", settings.log_level)
    limits = EdgeLimits.from_settings(settings)
    room = raise_descriptor_limit(limits.max_connections)
    if room < limits.max_connections:
        logger.warning("MAX_CONNECTIONS lowered to %d: the descriptor limit allows no more", room)
    serve_draining(
        "api_gateway.main:create_app",
        drain_seconds=settings.shutdown_drain_seconds,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        factory=True,
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        http=protocol_factory(limits, Connections(room)),
        ws="none",  # no websockets in the API: an Upgrade is ignored or refused
        lifespan="on",
        # Its own backlog for bursts of new clients; past MAX_CONNECTIONS they are answered
        # at once (edge.Connections), so the queue never holds them long.
        backlog=4096,
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
