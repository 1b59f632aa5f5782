#!/usr/bin/env bash
# sudo npm start: install what is missing, build the web app once, run the server.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
need_root start
install_requirements engine
# The pages are a static export (next.config.mjs): built again when what they are made of is newer.
if [ ! -f out/index.html ] || [ -n "$(find app server/common package-lock.json next.config.mjs -newer out/index.html -print -quit)" ]; then
  npx --no-install next build
fi
exec node bin/playground.mjs serve
