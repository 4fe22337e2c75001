#!/bin/sh
# The inspector page (GET /ui) in a real browser: Debian's chromium driven
# by puppeteer-core (pinned below) against a real `semantic serve`.
#
#   run.sh SEMANTIC_BIN MODEL SCRATCH_DIR SHOTS_DIR
#
# Installs puppeteer-core into SCRATCH_DIR once (never in the source tree)
# and writes the screenshots into SHOTS_DIR. Skips (exit 77) with a message
# saying how to install what is missing when chromium or Node.js 18+ is
# missing; fails when npm cannot install the package.
set -eu

BIN=$1
MODEL=$2
SCRATCH=$3
SHOTS=$4
PKG=puppeteer-core@24.43.1

skip() {
    echo "inspector browser test skipped: $1 is missing. $2" >&2
    exit 77
}
CHROMIUM=${SEM_CHROMIUM:-}
if [ -z "$CHROMIUM" ]; then
    for c in chromium chromium-browser; do
        if command -v "$c" >/dev/null 2>&1; then CHROMIUM=$(command -v "$c"); break; fi
    done
fi
[ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ] ||
    skip "chromium" "Install it with 'apt-get install chromium' (tools/install-deps does), or set SEM_CHROMIUM to a Chromium binary."
command -v node >/dev/null 2>&1 ||
    skip "node (Node.js 18 or newer)" "Install nodejs and npm (tools/install-deps does)."
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || skip "Node.js 18 or newer (found $(node --version))" "Upgrade nodejs."
command -v npm >/dev/null 2>&1 || skip "npm" "Install npm (tools/install-deps does)."

mkdir -p "$SCRATCH" "$SHOTS"
SCRATCH=$(cd "$SCRATCH" && pwd)
SHOTS=$(cd "$SHOTS" && pwd)
stamp="$SCRATCH/.installed_$(printf '%s' "$PKG" | tr -s ' \n/@' '____')"
if [ ! -f "$stamp" ]; then
    [ -f "$SCRATCH/package.json" ] || echo '{"private": true}' >"$SCRATCH/package.json"
    echo "inspector browser test: installing $PKG into $SCRATCH" >&2
    if ! timeout 600 npm install --prefix "$SCRATCH" --no-audit --no-fund --loglevel=error \
        "$PKG" >&2; then
        echo "inspector browser test: npm install $PKG failed or timed out: is the npm registry reachable?" >&2
        exit 1
    fi
    touch "$stamp"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/semantic-ui-run-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
TMPDIR=$TMP SEM_CHROMIUM=$CHROMIUM SEM_UI_SHOTS=$SHOTS \
    node "$(dirname "$0")/inspector.mjs" "$BIN" "$SCRATCH" "$MODEL" ""
