#!/bin/sh
# bench/llamacpp.sh SEMANTIC LLAMA_BENCH MODEL... - semantic against
# llama.cpp on the same files, in one sitting (docs/performance.md).
#
# For each MODEL runs `SEMANTIC bench -m MODEL -p 512 -n 128 -r 3 -t 2`
# and `LLAMA_BENCH -m MODEL -p 512 -n 128 -r 3 -t 2` (llama.cpp's
# llama-bench, built from its public source only to compare against),
# one after the other, and prints both and their ratios. Environment:
#   ISA=avx2      passed to semantic as --isa (default: the best the CPU has);
#                 build llama.cpp for the same ISA (-DGGML_NATIVE=OFF
#                 -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON for avx2)
#   P=512 N=128 R=3 T=2
#
# Needs python3.
set -eu

SEM=$1
LB=$2
shift 2
[ -x "$SEM" ] && [ -x "$LB" ] && [ $# -gt 0 ] ||
    { echo "usage: bench/llamacpp.sh path/to/semantic path/to/llama-bench MODEL.gguf..." >&2; exit 2; }
P=${P:-512}
N=${N:-128}
R=${R:-3}
T=${T:-2}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; semantic --isa ${ISA:-best}; $T threads, median of $R"
printf '%-24s %21s %21s %13s\n' model "llama.cpp pp/tg" "semantic pp/tg" "ratio pp/tg"
for m in "$@"; do
    "$LB" -m "$m" -p "$P" -n "$N" -r "$R" -t "$T" -o json >"$TMP/l.json" 2>/dev/null
    "$SEM" bench -m "$m" -p "$P" -n "$N" -r "$R" -t "$T" ${ISA:+--isa "$ISA"} --json >"$TMP/s.json"
    python3 - "$m" "$TMP/l.json" "$TMP/s.json" "$P" "$N" <<'PY'
import json, os, sys
name, lpath, spath, p, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
runs = json.load(open(lpath))
lpp = next(r["avg_ts"] for r in runs if r["n_prompt"] == p and r["n_gen"] == 0)
ltg = next(r["avg_ts"] for r in runs if r["n_gen"] == n and r["n_prompt"] == 0)
s = json.loads(open(spath).read().strip().splitlines()[-1])
spp, stg = s["pp_tok_s"]["median"], s["tg_tok_s"]["median"]
print(f"{os.path.basename(name):24s} {lpp:9.1f} / {ltg:9.1f} {spp:9.1f} / {stg:9.1f} {spp / lpp:5.2f} / {stg / ltg:5.2f}")
PY
done
