#!/usr/bin/env bash
# install_requirements NEED...: installs the Debian packages that bring the
# programs scripts/requirements.tsv lists for any of NEED (engine, tests,
# bench), where they are not installed yet. That file is the one list of what
# the playground runs; `playground doctor` checks the engine's part of it.
# Sourced by setup.sh; run from the repository's root.

# requirements_for NEED...: the packages of the rows any of NEED needs, each once.
requirements_for() {
  local wanted=" $* " program pkg needs purpose need
  while IFS=$'\t' read -r program pkg needs purpose; do
    case "$program" in '' | '#'*) continue ;; esac
    for need in ${needs//,/ }; do
      if [[ "$wanted" == *" $need "* ]]; then
        echo "$pkg"
        break
      fi
    done
  done < scripts/requirements.tsv | awk '!seen[$0]++'
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

install_requirements() {
  local pkg missing=()
  for pkg in $(requirements_for "$@"); do
    is_installed "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
