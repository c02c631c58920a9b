#!/usr/bin/env bash
# Prints the container engine `make test-images` will use, installing it first if needed:
# a running Docker Engine with `docker compose` is used as it is; otherwise Debian's
# podman, buildah and debootstrap (apt) and podman-compose from PyPI (Debian's 1.0.3 cannot
# read the compose file's env_file entries) in .tools/podman-compose.
# Usage: install-engine.sh TOOLS_DIR
set -euo pipefail
tools="$1"
podman_compose_version=1.6.0

if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  echo docker
  exit 0
fi

missing=""
for tool in podman buildah debootstrap runc; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
command -v aardvark-dns >/dev/null 2>&1 || [ -x /usr/lib/podman/aardvark-dns ] || missing="$missing aardvark-dns"
if [ -n "$missing" ]; then
  {
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      $missing netavark aardvark-dns uidmap iptables
  } >&2
fi

# podman 4.3 on these machines: crun refuses their cgroup layout and rlimits, so runc, and
# ulimits a container may have. A drop-in, so the machine's own containers.conf stays.
conf=/etc/containers/containers.conf.d/50-shop-test-images.conf
if [ ! -f "$conf" ]; then
  mkdir -p "$(dirname "$conf")"
  cat >"$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
fi

venv="$tools/podman-compose"
if ! "$venv/bin/podman-compose" version 2>/dev/null | grep -q "$podman_compose_version"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "podman-compose==$podman_compose_version" >&2
fi
echo podman
