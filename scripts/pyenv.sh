#!/usr/bin/env bash
# Create or update the repo's Python venv (.venv) with requirements-dev.txt
# the in-repo Python client with its [host] extra (imbi-plugin-host) and the
# example Python plugin package (examples/python-plugin). Idempotent: re-installs only when the
# requirements change. Prints the venv's python path.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
top=$(cd "$(dirname "$0")/.." && pwd)
venv="$top/.venv"
stamp="$venv/.requirements.sha"
want=$( { cat "$top/requirements-dev.txt"; cat "$top"/clients/python/pyproject.toml "$top"/examples/python-plugin/pyproject.toml 2>/dev/null || true; } | sha256sum | cut -d" " -f1)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$top/requirements-dev.txt" >&2
  if [ -f "$top/clients/python/pyproject.toml" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$top/clients/python[host]" >&2
  fi
  if [ -f "$top/examples/python-plugin/pyproject.toml" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$top/examples/python-plugin" >&2
  fi
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
