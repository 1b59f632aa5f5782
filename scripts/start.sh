#!/usr/bin/env bash
# sudo npm start: install what is missing, build the web app once, run the server.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
need_root start
install_requirements engine
if [ ! -f .next/BUILD_ID ] || [ -n "$(find app package-lock.json next.config.mjs -newer .next/BUILD_ID -print -quit)" ]; then
  npx --no-install next build
fi
exec node --import tsx server/main.ts
