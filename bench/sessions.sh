#!/bin/sh
# bench/sessions.sh BIN MODEL [SCENARIO] - a multi-agent session in each
# topology and view (docs/performance.md, "Multi-agent sessions").
#
# Runs SCENARIO (default bench/sessions/six.json: 6 agents, 10 broadcast
# rounds of 32-token turns) four times, each against a fresh `semantic
# serve -m MODEL --pool-mb 1024 --max-batch 8` on a free port of
# 127.0.0.1 with an empty cache folder: broadcast and round robin (the
# same turns one speaker after the other), each with the own and the
# shared view. For each it prints the run's time per round, the tokens
# each round computed (prompt less cached, summed over its turns; round 1,
# then the least and most of the others) and the KV blocks in use and
# shared once the run ends (the scenario keeps its session, so its
# agents stay in the pool).
#
# Needs curl and python3. Each server dies with its run.
set -eu

BIN=$1
MODEL=$2
SCEN=${3:-$(dirname "$0")/sessions/six.json}
[ -x "$BIN" ] && [ -f "$MODEL" ] ||
    { echo "usage: bench/sessions.sh path/to/semantic MODEL.gguf [SCENARIO.json]" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench/sessions.sh needs python3 (apt-get install python3)" >&2; exit 2; }

TMP=$(mktemp -d)
PID=
trap '[ -z "$PID" ] || kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(basename "$MODEL"); $(basename "$SCEN")"

for topology in broadcast round_robin; do
    python3 - "$SCEN" "$topology" "$TMP/scenario.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for p in s["phases"]:
    p["topology"] = sys.argv[2]
json.dump(s, open(sys.argv[3], "w"))
PY
    for view in own shared; do
        PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        rm -rf "$TMP/cache"
        "$BIN" serve -m "$MODEL" --host 127.0.0.1 --port "$PORT" --cache-dir "$TMP/cache" \
            --pool-mb 1024 --max-batch 8 2>"$TMP/log" &
        PID=$!
        until curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null; do sleep 0.05; done
        t0=$(date +%s.%N)
        "$BIN" session run "$TMP/scenario.json" --server "http://127.0.0.1:$PORT" --json \
            --view "$view" >"$TMP/turns.jsonl"
        t1=$(date +%s.%N)
        curl -sf "http://127.0.0.1:$PORT/metrics" >"$TMP/metrics"
        kill $PID; wait $PID 2>/dev/null || true; PID=
        python3 - "$TMP/turns.jsonl" "$TMP/metrics" "$SCEN" "$topology" "$view" "$t0" "$t1" <<'PY'
import json, sys
turns_file, metrics_file, scen, topology, view, t0, t1 = sys.argv[1:]
agents = len(json.load(open(scen))["agents"])
turns = [json.loads(l) for l in open(turns_file) if '"session.turn"' in l]
rounds = [turns[i:i + agents] for i in range(0, len(turns), agents)]
computed = [sum(t["prompt_tokens"] - t["cached_tokens"] for t in r) for r in rounds]
prompt = sum(t["prompt_tokens"] for t in turns)
cached = sum(t["cached_tokens"] for t in turns)
m = {}
for line in open(metrics_file):
    if line.startswith("semantic_pool_"):
        name, value = line.split("{")[0].split()[0], float(line.split()[-1])
        m[name] = m.get(name, 0) + value
used, shared, bytes_ = m["semantic_pool_blocks_used"], m["semantic_pool_blocks_shared"], m["semantic_pool_block_bytes"]
secs = float(t1) - float(t0)
print(f"{topology:11s} {view:6s}: {secs / len(rounds):5.1f} s/round ({secs:.1f} s, {len(rounds)} rounds); "
      f"computed per round: {computed[0]} (round 1), {min(computed[1:])}-{max(computed[1:])} (rounds 2-{len(rounds)}); "
      f"cached {cached} of {prompt} ({100 * cached / prompt:.0f} %); "
      f"KV {used:.0f} blocks ({used * bytes_ / 2**20:.0f} MiB), {shared:.0f} shared")
PY
    done
done
