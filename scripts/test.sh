#!/usr/bin/env bash
# Install everything the tests need and run them all: lint, unit, app (AppTest) and browser (Playwright + chromium).
# This is the README's test command and exactly what CI runs (.ci/run).
set -uo pipefail
cd "$(dirname "$0")/.."

# chromium for the browser tests; poppler-utils (pdftoppm) renders the scan report's PDF in the report tests;
# haproxy runs deploy/haproxy.cfg in front of two app replicas (tests/e2e/test_replicas.py, tests/test_serving.py)
if [ ! -x /usr/bin/chromium ] || ! command -v pdftoppm >/dev/null || [ ! -x /usr/sbin/haproxy ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium poppler-utils haproxy >/dev/null \
    || { echo "could not install chromium, poppler-utils and haproxy"; exit 1; }
fi
python -m pip install -q --disable-pip-version-check -r requirements-dev.txt || { echo "pip install failed"; exit 1; }

python -m ruff check brainscan pages tests scripts streamlit_app.py || exit 1

export TF_CPP_MIN_LOG_LEVEL=2 PYTHONDONTWRITEBYTECODE=1
python -m pytest -q "$@"
rc=$?
if [ "$rc" = 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit "$rc"
