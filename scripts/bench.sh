#!/usr/bin/env bash
# npm run bench: the playground's benchmarks (bench/index.ts lists them), each
# beside the standard tool that does the same job, measured in the same run.
# `npm run bench -- pull` runs only the benchmarks whose name is given.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
need_root bench
# The engine's programs and the benchmarks' own (the test registry and skopeo,
# mmdebstrap for a large real image, podman to compare with):
# scripts/requirements.tsv.
install_requirements engine bench
exec node --import tsx bench/index.ts "$@"
