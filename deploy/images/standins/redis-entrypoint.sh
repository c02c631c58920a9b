#!/bin/sh
# As the official image's entrypoint: options alone (or a config file) mean redis-server;
# protected mode is off (the network is the boundary, as in the official build); the
# server drops root and owns its data directory.
set -e
case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
  shift
  # A config file must stay the first argument; the default comes before the options.
  case "${1:-}" in
    "" | -*) set -- redis-server --protected-mode no "$@" ;;
    *) config="$1"; shift; set -- redis-server "$config" --protected-mode no "$@" ;;
  esac
  umask 0077
fi
exec "$@"
