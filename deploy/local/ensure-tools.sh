#!/usr/bin/env bash
# Installs what the local stack and the tests need and a fresh machine may lack:
# uv (from PyPI), a Java 17+ runtime and Maven (Debian packages) for the embedded Kafka,
# Node.js and npm (Debian packages) for the web pages' locked front-end packages.
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
if ! command -v npm >/dev/null 2>&1; then need_apt+=(nodejs npm); fi
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

# The web pages' front-end packages (the French State's design system, axe-core for the
# accessibility checks), exactly as package-lock.json pins them; served from this checkout,
# never from a CDN. Install scripts are not run: the pages only need the packages' files.
WEB_DIR="services/web"
if [ ! -f "${WEB_DIR}/node_modules/.package-lock.json" ] \
   || [ "${WEB_DIR}/package-lock.json" -nt "${WEB_DIR}/node_modules/.package-lock.json" ]; then
  echo "[setup] installing the web pages' npm packages (package-lock.json)"
  npm ci --prefix "${WEB_DIR}" --ignore-scripts --no-audit --no-fund --loglevel=error
fi
