#!/bin/sh
# The official OpenAI and Anthropic SDKs against `semantic serve`.
#
#   run.sh SEMANTIC_BIN MODEL SCRATCH_DIR [api|persistence]
#
# Installs the npm packages (pinned below) into SCRATCH_DIR once (never in
# the source tree), then runs sdk_test.mjs, which starts its own servers.
# Fails at once, saying what is missing, without Node.js 18+, npm or the
# npm registry.
set -eu

BIN=$1
MODEL=$2
SCRATCH=$3
SUITE=${4:-api}
OPENAI_PKG=${SEM_SDK_OPENAI:-openai@6.49.0}           # 7.x needs Node 22
ANTHROPIC_PKG=${SEM_SDK_ANTHROPIC:-@anthropic-ai/sdk@1.14.0}

missing() {
    echo "sdk tests: $1 is missing. $2" >&2
    exit 1
}
command -v node >/dev/null 2>&1 ||
    missing "node (Node.js 18 or newer)" "Install nodejs (tools/install-deps does)."
command -v npm >/dev/null 2>&1 || missing "npm" "Install npm (tools/install-deps does)."
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || missing "Node.js 18 or newer (found $(node --version))" "Upgrade nodejs."

stamp=$(printf '%s' ".installed $OPENAI_PKG $ANTHROPIC_PKG" | tr ' /@' '___')
stamp="$SCRATCH/$stamp"
mkdir -p "$SCRATCH"
if [ ! -f "$stamp" ]; then
    [ -f "$SCRATCH/package.json" ] || echo '{"private": true}' >"$SCRATCH/package.json"
    echo "sdk tests: installing $OPENAI_PKG $ANTHROPIC_PKG into $SCRATCH" >&2
    if ! timeout 300 npm install --prefix "$SCRATCH" --no-audit --no-fund --loglevel=error \
        "$OPENAI_PKG" "$ANTHROPIC_PKG" >&2; then
        missing "the npm packages $OPENAI_PKG and $ANTHROPIC_PKG" \
            "npm install failed or timed out: is https://registry.npmjs.org reachable?"
    fi
    touch "$stamp"
fi

# Every temporary folder of the run (the servers' cache folders) lives in
# one folder that goes when this script ends, even if node was killed.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/semantic-sdk-run-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
TMPDIR=$TMP node "$(dirname "$0")/sdk_test.mjs" "$BIN" "$MODEL" "$SCRATCH" "$SUITE"
