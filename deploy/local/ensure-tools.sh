#!/usr/bin/env bash
# Installs what the local stack and the tests need and a fresh machine may lack:
# uv (from PyPI), a Java 17+ runtime and Maven (Debian packages) for the embedded Kafka.
# PostgreSQL (Debian package) is installed by the test fixtures themselves when needed.
set -euo pipefail

UV_VERSION="0.13.8"

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "[setup] installing uv ${UV_VERSION} from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi

need_apt=()
if ! command -v java >/dev/null 2>&1; then need_apt+=(openjdk-17-jre-headless); fi
if ! command -v mvn >/dev/null 2>&1; then need_apt+=(maven); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "[setup] missing ${need_apt[*]}: install them (Debian: apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  echo "[setup] installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
