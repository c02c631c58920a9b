#!/bin/sh
# As the official image: options alone mean options for nats-server.
set -e
case "${1:-}" in
  -*) set -- nats-server "$@" ;;
esac
exec "$@"
