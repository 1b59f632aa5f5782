#!/usr/bin/env bash
# Installs what the playground needs on a fresh Debian/Ubuntu host with Node 20:
# the npm packages (when package-lock.json changed since the last install) and
# the generated Prisma client. Sourced by start.sh, test.sh and bench.sh, which
# then install the Debian packages each of them needs (install_requirements,
# scripts/requirements.sh) once they know they run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "playground: run this as root (sudo npm $1): containers need root on the host" >&2
    exit 1
  fi
}

source scripts/requirements.sh

stamp=node_modules/.playground-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi
if [ ! -f server/generated/prisma/client.ts ] || [ prisma/schema.prisma -nt server/generated/prisma/client.ts ]; then
  npx --no-install prisma generate >/dev/null
fi
