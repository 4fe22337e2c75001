#!/bin/sh
# bench/models.sh BIN DIR [POOL_MB] - the cost of a model that is not
# loaded, and the RAM of several loaded models (docs/performance.md,
# "Several models").
#
# Serves DIR/*.gguf (--models-dir, all loaded on demand) on a free port of
# 127.0.0.1 with a fixed pool per model (POOL_MB, default 256), then, for
# each model in name order:
#   - the time from a streamed request for it (not loaded) to its first
#     content token, and the same for a second request (loaded);
#   - the server's resident memory (VmRSS) once it is loaded.
# Last, it reloads the first model (the same file) and prints the RSS
# once the new file serves: the weights are mapped, so the reload shares
# the page cache's copy.
#
# Needs curl and python3. The server dies with the script.
set -eu

BIN=$1
DIR=$2
POOL=${3:-256}
[ -x "$BIN" ] || { echo "usage: bench/models.sh path/to/semantic DIR [POOL_MB]" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench/models.sh needs python3 (apt-get install python3)" >&2; exit 2; }

TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --models-dir "$DIR" --host 127.0.0.1 --port "$PORT" --cache-dir "$TMP/cache" \
    --pool-mb "$POOL" --admin-key bench --max-batch 4 2>"$TMP/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; grep -o "loaded [^,]* in [0-9]* ms" "$TMP/log" >&2 || true; rm -rf "$TMP"' EXIT INT TERM
until curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null; do sleep 0.05; done

rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' /proc/$PID/status; }

# Milliseconds from sending a streamed chat request to its first content delta.
ttft() {
    python3 - "$PORT" "$1" <<'EOF'
import http.client, json, sys, time
port, model = int(sys.argv[1]), sys.argv[2]
body = json.dumps({"model": model, "max_tokens": 4, "stream": True,
                   "messages": [{"role": "user", "content": "Tell me a story"}]})
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
t0 = time.monotonic()
c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
r = c.getresponse()
for line in r:
    if line.startswith(b"data: {") and b'"content":"' in line:
        print("%.0f" % ((time.monotonic() - t0) * 1e3))
        break
EOF
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; pool $POOL MiB per model"
echo "RSS with no model loaded: $(rss) MiB"
n=0
first=""
for f in "$DIR"/*.gguf; do
    name=$(basename "$f" .gguf)
    [ -n "$first" ] || first=$name
    n=$((n + 1))
    cold=$(ttft "$name")
    warm=$(ttft "$name")
    mib=$(($(stat -L -c %s "$f") / 1048576))
    echo "$name ($mib MiB): first token $cold ms when not loaded, $warm ms loaded; RSS with $n loaded: $(rss) MiB"
done
curl -sf -X POST -H "Authorization: Bearer bench" "http://127.0.0.1:$PORT/admin/models/$first/reload" >/dev/null
until curl -sf "http://127.0.0.1:$PORT/v1/models/$first" | grep -q '"loads":2'; do sleep 0.05; done
until curl -sf "http://127.0.0.1:$PORT/v1/models/$first" | grep -q '"state":"loaded"'; do sleep 0.05; done
echo "after a reload of $first (same file): RSS $(rss) MiB"
