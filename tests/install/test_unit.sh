#!/bin/sh
# The systemd unit (dist/systemd/semantic.service.in), as `make install`
# writes it:
#   - `systemd-analyze verify` finds nothing to say about it (the install
#     goes under a temporary PREFIX, so the ExecStart program exists);
#   - the server runs with the unit's own command line, as systemd would
#     start it: a fresh folder as STATE_DIRECTORY, a credentials folder
#     holding api-keys, the installed config, and a HOME and working
#     folder that must stay empty. Requests need a key; agent memory lands
#     in the state folder; SIGHUP (ExecReload) rescans the models folder; SIGTERM
#     drains and exits 0 well within TimeoutStopSec;
#   - under strace, every system call it makes is one the unit's
#     SystemCallFilter allows (release builds: a sanitizer's runtime makes
#     calls of its own).
# systemd cannot start the unit itself here (it is not PID 1 in a
# container); MemoryDenyWriteExecute is checked by test_serve_config.
#
# usage: test_unit.sh SRC_ROOT BUILD_DIR MODEL
# Exit 77 (skipped) without systemd-analyze or curl.
set -u
src=$1
build=$2
model=$3
tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for prog in systemd-analyze curl; do
    if ! command -v "$prog" >/dev/null 2>&1; then
        echo "skipped: $prog is missing: run tools/install-deps"
        exit 77
    fi
done

prefix=$tmp/usr
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$src" install PREFIX="$prefix" \
        INSTALL_BUILD="$build" JOBS=1 >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: make install PREFIX=$prefix"
    exit 1
fi
unit=$prefix/lib/systemd/system/semantic.service

# ---------------------------------------------------------------- verify
MANPATH=$prefix/share/man systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1 ||
    bad "systemd-analyze verify failed"
if [ -s "$tmp/verify.log" ]; then bad "systemd-analyze verify says:"; cat "$tmp/verify.log"; fi

# ---------------------------------------------------------------- the unit's command line
value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(value ExecStart)
stop_s=$(value TimeoutStopSec)
[ -n "$exec_start" ] && [ -n "$stop_s" ] || { echo "FAIL: no ExecStart or TimeoutStopSec"; exit 1; }
conf=$(echo "$exec_start" | sed -n 's/.*--config \([^ ]*\).*/\1/p')
[ -f "$conf" ] || bad "the unit's --config $conf was not installed"

# The installed config, on a models folder holding the test model, and a
# free port (any port: 0; the log says which).
mkdir -p "$tmp/state" "$tmp/creds" "$tmp/home" "$tmp/cwd" "$tmp/models"
cp "$model" "$tmp/models/test-model.gguf"
sed -e "s|^models-dir = .*|models-dir = $tmp/models|" -e "s|^port = .*|port = 0|" \
    -e 's|^#default-model = .*|default-model = test-model|' \
    -e 's|^#pool-mb = .*|pool-mb = 16|' "$conf" >"$tmp/conf.new" && mv "$tmp/conf.new" "$conf"
grep -q "^models-dir = $tmp/models" "$conf" || bad "the example config has no models-dir line"
printf '# test keys\nunit-key-1\nunit-key-2\n' >"$tmp/creds/api-keys"
chmod 600 "$tmp/creds/api-keys"
# What systemd substitutes in ExecStart.
cmdline=$(echo "$exec_start" | sed -e "s|\${STATE_DIRECTORY}|$tmp/state|g" \
    -e "s|\${CREDENTIALS_DIRECTORY}|$tmp/creds|g")
case $cmdline in *'$'*) bad "ExecStart uses a variable this test does not set: $cmdline" ;; esac

tracer=""
if grep -q 'SEM_SANITIZE:STRING=.' "$build/CMakeCache.txt"; then
    echo "note: sanitizer build: the system call check is left to the release build"
elif command -v strace >/dev/null 2>&1; then
    tracer="strace -f -qq -o $tmp/strace.log"
else
    echo "note: strace is missing: the system call check is skipped (apt-get install strace)"
fi
# The server dies with this shell (parent-death signals: strace's, and the
# server's own under strace) even if the shell is killed.
pdeath=""
setpriv --help 2>/dev/null | grep -q pdeathsig && pdeath="setpriv --pdeathsig KILL"

(cd "$tmp/cwd" && exec env -i PATH=/usr/bin:/bin HOME="$tmp/home" \
    STATE_DIRECTORY="$tmp/state" CREDENTIALS_DIRECTORY="$tmp/creds" \
    $pdeath $tracer $pdeath $cmdline) 2>"$tmp/server.log" &
pid=$!   # strace when it traces, else the server
spid=$pid # the server: signals go to it

port=""
i=0
while [ $i -lt 600 ] && [ -z "$port" ]; do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log")
    kill -0 "$pid" 2>/dev/null || break
    [ -z "$port" ] && sleep 0.1
    i=$((i + 1))
done
ready=""
i=0
while [ -n "$port" ] && [ $i -lt 600 ]; do
    if curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$ready" ]; then
    echo "FAIL: the server did not become ready; its log:"
    cat "$tmp/server.log"
    exit 1
fi
if [ -n "$tracer" ]; then # the first process strace followed, the one that exec'd semantic
    spid=$(grep -m 1 'execve(.*/semantic"' "$tmp/strace.log" | cut -d ' ' -f 1)
    [ -n "$spid" ] || { echo "FAIL: no server in the strace log"; exit 1; }
fi

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
url=http://127.0.0.1:$port
[ "$(code "$url/v1/models")" = 401 ] || bad "a request without a key is not refused"
[ "$(code -H 'Authorization: Bearer unit-key-2' "$url/v1/models")" = 200 ] ||
    bad "a key of the credential is refused"
[ "$(code -H 'Authorization: Bearer test keys' "$url/v1/models")" = 401 ] ||
    bad "a comment of the key file is a key"
[ "$(code -H 'Authorization: Bearer unit-key-1' -H 'X-Agent-ID: unit-agent' \
    -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":4}' \
    "$url/v1/chat/completions")" = 200 ] || bad "a chat request failed"

# SIGHUP, as ExecReload sends it: a model added to the folder is served.
cp "$model" "$tmp/models/second.gguf"
kill -HUP "$spid"
i=0
until grep -q '"SIGHUP: models rescanned: 1 added' "$tmp/server.log" || [ $i -ge 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
grep -q '"SIGHUP: models rescanned: 1 added' "$tmp/server.log" || bad "SIGHUP did not rescan"
curl -s -H 'Authorization: Bearer unit-key-1' "$url/v1/models" | grep -q '"second"' ||
    bad "the model added before SIGHUP is not listed"
[ "$(code "$url/health/ready")" = 200 ] || bad "not ready after SIGHUP"

# SIGTERM, as systemctl stop sends it: exit 0 within TimeoutStopSec.
stop_s=${stop_s%s}
kill -TERM "$spid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt $((stop_s * 10)) ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
    bad "still running ${stop_s} s after SIGTERM"
else
    wait "$pid"
    rc=$?
    [ "$rc" -eq 0 ] || bad "exit $rc after SIGTERM"
fi
pid=""
grep -q '"stopped"' "$tmp/server.log" || bad "the log does not end with stopped"

# Agent memory in the state folder, nothing in HOME or the working folder.
# (a folder of the models folder's model: models/NAME)
ls "$tmp/state/models/test-model"/*.kv >/dev/null 2>&1 || bad "no agent file in STATE_DIRECTORY"
[ -f "$tmp/state/models/test-model/index.sqlite" ] || bad "no agent index in STATE_DIRECTORY"
[ -z "$(ls -A "$tmp/home")" ] || bad "the server wrote to HOME: $(ls -A "$tmp/home")"
[ -z "$(ls -A "$tmp/cwd")" ] || bad "the server wrote to its working folder"

# ---------------------------------------------------------------- system calls
if [ -n "$tracer" ]; then
    # A filter's groups, expanded (systemd-analyze syscall-filter @group).
    expand() {
        systemd-analyze syscall-filter "$1" | sed 1,2d | tr -d ' ' | grep -v '^#' | grep -v '^$' |
            while read -r s; do
                case $s in @*) expand "$s" ;; *) echo "$s" ;; esac
            done
    }
    filter=$(value SystemCallFilter)
    for group in $filter; do expand "$group"; done | sort -u >"$tmp/allowed"
    # From the exec of semantic on (not setpriv's calls before it).
    awk '/execve\(.*\/semantic"/ { on = 1 } on' "$tmp/strace.log" | sed -E 's/^[0-9]+ +//' |
        grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort -u >"$tmp/used"
    [ "$(wc -l <"$tmp/used")" -gt 20 ] || bad "strace saw too few system calls"
    outside=$(comm -23 "$tmp/used" "$tmp/allowed" | tr '\n' ' ')
    [ -z "$outside" ] || bad "system calls outside SystemCallFilter=$filter: $outside"
fi

if [ "$fail" -ne 0 ]; then
    echo "the server's log:"
    cat "$tmp/server.log"
fi
[ "$fail" -eq 0 ] && echo "the unit verifies; the server runs as the unit starts it"
exit "$fail"
