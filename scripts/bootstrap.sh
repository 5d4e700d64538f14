#!/usr/bin/env bash
# Create .venv with callsync and its dev tools, and a .env with fresh secrets if there is none.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

if [ ! -f .env ]; then
  secret() { .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))'; }
  {
    echo "ENCRYPTION_KEY=$(secret)"
    echo "JWT_SECRET=$(secret)"
    echo "SERVICE_TOKEN=$(secret)"
    echo "FLOWER_BASIC_AUTH=ops:$(secret)"
  } > .env
  echo "bootstrap: wrote .env with fresh secrets"
fi
mkdir -p var
