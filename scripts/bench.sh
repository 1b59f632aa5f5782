#!/usr/bin/env bash
# npm run bench: the playground's benchmarks (bench/index.ts lists them), each
# beside the standard tool that does the same job, measured in the same run.
# `npm run bench -- pull` runs only the benchmarks whose name is given.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
need_root bench
# The benchmarks' own parts: the test registry and skopeo (as for the tests),
# mmdebstrap to build a large real image (a Debian root filesystem), podman
# with runc, which `playground run` is compared with, and Debian's Chromium
# (the browser benchmark, as for the browser tests).
apt_install docker-registry skopeo busybox-static mmdebstrap podman runc chromium
exec node --import tsx bench/index.ts "$@"
