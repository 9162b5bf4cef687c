#!/usr/bin/env bash
# System packages the tests need beyond Python: Debian's chromium and chromium-driver, in which
# tests/test_report.py opens the HTML report, and postgresql, the server tests/servers.py starts
# itself (initdb + pg_ctl) for the shared warehouse and Dagster's PostgreSQL storage. Installs only
# what is missing (idempotent); without root (or password-less sudo) it says what is missing and
# leaves it: those tests skip.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed" || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
else
    echo "note: ${missing[*]} not installed and not root: the report's browser test and the PostgreSQL tests" \
         "will skip (install with: apt-get install -y ${missing[*]})" >&2
    exit 0
fi
echo "installing ${missing[*]} (apt-get) for the tests" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
