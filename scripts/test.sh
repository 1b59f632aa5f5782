#!/usr/bin/env bash
# sudo npm test: the whole suite. Unit tests, then integration tests on real
# kernel objects and a real registry, then the browser tests; finally checks
# that nothing of the playground's is left on the host.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
need_root test
# The engine's programs and the tests' own (a real registry, skopeo to push
# images into it, a static busybox for a tiny image, Debian's Chromium for
# Playwright…): scripts/requirements.tsv.
install_requirements engine tests

npx --no-install tsc --noEmit
npx --no-install vitest run
# Browser tests: Debian's Chromium against the real server (e2e/, playwright.config.ts).
npx --no-install playwright test
echo "leak check: playground doctor --leaks"
node bin/playground.mjs doctor --leaks
