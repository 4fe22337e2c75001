#!/bin/sh
# Real agent clients against `semantic serve`: Claude Code, the OpenAI
# Agents SDK, the Vercel AI SDK, the official SDKs' tool calling and the
# Responses API (the openai SDK's responses and the Agents SDK's default model).
#
#   run.sh SEMANTIC_BIN SCRATCH_DIR TEST MODEL [TEMPLATE]
#
# TEST is one of claude_code, openai_agents, ai_sdk, official_sdks, responses (the
# file TEST.mjs beside this script). Installs the npm packages (pinned
# below; the newest majors need Node 22) into SCRATCH_DIR once, never in the
# source tree; Claude Code's native binary only for claude_code. Fails at
# once, saying what is missing, without Node.js 18+, npm or the npm registry.
set -eu

BIN=$1
SCRATCH=$2
TEST=$3
MODEL=$4
TEMPLATE=${5:-}
PKGS="openai@6.49.0 @anthropic-ai/sdk@1.14.0 @openai/agents@0.14.3 ai@6.0.333
      @ai-sdk/openai@3.0.141 @ai-sdk/anthropic@3.0.140 zod@4.6.7"
CLAUDE_VERSION=2.1.332 # the wrapper package needs Node 22; its native binary does not

missing() {
    echo "agent client tests: $1 is missing. $2" >&2
    exit 1
}
command -v node >/dev/null 2>&1 ||
    missing "node (Node.js 18 or newer)" "Install nodejs (tools/install-deps does)."
command -v npm >/dev/null 2>&1 || missing "npm" "Install npm (tools/install-deps does)."
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || missing "Node.js 18 or newer (found $(node --version))" "Upgrade nodejs."

mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd) # absolute: the clients run in other folders

# install PACKAGES...: npm install into SCRATCH once per package list.
install() {
    stamp="$SCRATCH/.installed_$(printf '%s' "$*" | tr -s ' \n/@' '____')"
    [ -f "$stamp" ] && return 0
    mkdir -p "$SCRATCH"
    [ -f "$SCRATCH/package.json" ] || echo '{"private": true}' >"$SCRATCH/package.json"
    echo "agent client tests: installing $* into $SCRATCH" >&2
    # shellcheck disable=SC2086 # the list is split on purpose
    if ! timeout 600 npm install --prefix "$SCRATCH" --no-audit --no-fund --loglevel=error \
        $* >&2; then
        missing "the npm packages $*" \
            "npm install failed or timed out: is https://registry.npmjs.org reachable?"
    fi
    touch "$stamp"
}
install $PKGS

CLAUDE=
if [ "$TEST" = claude_code ]; then
    case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) platform=linux-x64 ;;
    Linux-aarch64) platform=linux-arm64 ;;
    *) missing "a Claude Code build for $(uname -s) $(uname -m)" "Run on Linux x86_64 or arm64." ;;
    esac
    if [ -e /lib/ld-musl-x86_64.so.1 ] || [ -e /lib/ld-musl-aarch64.so.1 ]; then
        platform=$platform-musl # musl systems need the -musl build
    fi
    install "@anthropic-ai/claude-code-$platform@$CLAUDE_VERSION"
    CLAUDE="$SCRATCH/node_modules/@anthropic-ai/claude-code-$platform/claude"
    [ -x "$CLAUDE" ] || missing "$CLAUDE" "Remove $SCRATCH and run again."
fi

# Every temporary folder of the run (servers' cache folders, Claude Code's
# HOME) lives in one folder that goes when this script ends, even if node
# was killed.
TMP=$(mktemp -d "${TMPDIR:-/tmp}/semantic-agents-run-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
TMPDIR=$TMP SEM_CLAUDE=$CLAUDE node "$(dirname "$0")/$TEST.mjs" "$BIN" "$SCRATCH" "$MODEL" "$TEMPLATE"
