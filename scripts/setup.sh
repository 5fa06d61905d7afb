#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its dev tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
# pip compiles what it installs, but not an editable install's own files; where the environment
# says PYTHONDONTWRITEBYTECODE (as CI images often do), Python then compiles the package from
# source at every start of the CLI (~0.2 s of each run). Compiled once here instead, as a wheel
# would be; a file edited later is compiled afresh in memory, never read stale.
.venv/bin/python -m compileall -q target_openai_capi

# Real taps for tests/test_real_taps.py, each in its own environment (their dependencies are not
# ours), pinned: they are the independently written sources the target is checked against.
for spec in "tap-jsonl==0.3.1" "meltanolabs-tap-postgres==0.10.0" "tap-shopify==3.13.0"; do
  name="${spec%%==*}"
  marker=".venv-taps/$name/.installed-$spec"
  if [ ! -f "$marker" ]; then
    rm -rf ".venv-taps/$name"
    if "$PYTHON" -m venv ".venv-taps/$name" &&
      ".venv-taps/$name/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"; then
      touch "$marker"
    else  # the tests that need it skip, saying so
      echo "setup: could not install $spec; its tests will be skipped" >&2
    fi
  fi
done

# Debian packages the tests use: a PostgreSQL server for the tap-postgres tests (they start and
# stop their own in a temporary directory) and Chromium for the sandbox page's browser test.
# Without root or apt the tests that need them skip, saying why.
missing=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if ! { apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    echo "setup: could not install ${missing[*]}; the tests that need them will be skipped" >&2
  fi
fi
