#!/usr/bin/env bash
# Installs what the playground needs on a fresh Debian/Ubuntu host with Node 20:
# the npm packages (when package-lock.json changed since the last install) and
# the generated Prisma client. Sourced by start.sh, test.sh and bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "playground: run this as root (sudo npm $1): containers need root on the host" >&2
    exit 1
  fi
}

# apt_install PKG...: installs the Debian packages that are missing.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What the engine itself runs: util-linux (unshare, nsenter, mount), iproute2,
# iptables, e2fsprogs (mkfs.ext4 for the writable layer's size cap), attr
# (setfattr: marks opaque directories in unpacked layers for overlayfs),
# busybox-static (the program lesson checks and file transfers run inside
# containers, from the host: server/engine/process/enter-program.ts).
apt_install util-linux iproute2 iptables nftables e2fsprogs mount procps attr gcc libc6-dev busybox-static

stamp=node_modules/.playground-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi
if [ ! -f server/generated/prisma/client.ts ] || [ prisma/schema.prisma -nt server/generated/prisma/client.ts ]; then
  npx --no-install prisma generate >/dev/null
fi
