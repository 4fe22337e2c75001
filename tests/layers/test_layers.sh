#!/bin/sh
# The layers are enforced by the build: each library of src/ compiles with
# include roots that hold only its own folder and the folders it may use
# (src/CMakeLists.txt). This test proves it both ways:
#   - for every library, a probe that includes one of its own headers
#     compiles with that library's flags (the flags are real), and a probe
#     that includes a header of a layer further out fails with "No such
#     file or directory";
#   - no include in src/ climbs out of its folder with "../".
# usage: test_layers.sh SRC_ROOT BUILD_DIR
set -u
src=$1
build=$2
db=$build/compile_commands.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

# The compile command of the first source file of folder $1.
command_for() {
    awk -v dir="$src/src/$1/" '
        /"command":/ { cmd = $0 }
        /"file":/ { if (index($0, dir) && !done) { print cmd; done = 1 } }' "$db" |
        sed -e 's/^ *"command": "//' -e 's/",$//' -e 's/ -o [^ ]*//' -e 's/ -c [^ ]*$//'
}

# probe FOLDER HEADER WANT: WANT is "ok" or "missing".
probe() {
    cmd=$(command_for "$1")
    if [ -z "$cmd" ]; then
        echo "FAIL: no compile command for src/$1 in $db"
        fail=1
        return
    fi
    printf '#include "%s"\n' "$2" >"$tmp/probe.c"
    if eval "$cmd -fsyntax-only $tmp/probe.c" >"$tmp/out" 2>&1; then
        got=ok
    elif grep -q "No such file or directory" "$tmp/out"; then
        got=missing
    else
        got=error
    fi
    if [ "$got" != "$3" ]; then
        echo "FAIL: src/$1 including $2: want $3, got $got"
        sed 's/^/    /' "$tmp/out" | head -5
        fail=1
    else
        echo "ok: src/$1 including $2: $got"
    fi
}

probe base base/utf8.h ok
probe base domain/status.h missing
probe domain domain/block_table.h ok
probe domain ports/model_port.h missing
probe domain app/engine.h missing
probe app app/engine.h ok
probe app adapters/model/model.h missing
probe app adapters/http/http_api.h missing
probe adapters/kernels adapters/kernels/matmul.h ok
probe adapters/kernels adapters/model/model.h missing
probe adapters/kernels app/engine.h missing
probe adapters/gguf adapters/gguf/gguf.h ok
probe adapters/gguf adapters/text/tokenizer.h missing
probe adapters/text adapters/text/tokenizer.h ok
probe adapters/text adapters/template/jinja.h missing
probe adapters/chat adapters/chat/chat_output.h ok
probe adapters/chat adapters/template/chat_template.h missing
probe adapters/chat app/grammar.h missing
probe adapters/chat adapters/http/http_api.h missing
probe adapters/template adapters/chat/chat_syntax.h ok
probe adapters/template adapters/template/chat_template.h ok
probe adapters/template adapters/model/model.h missing
probe adapters/model adapters/model/forward.h ok
probe adapters/model adapters/store/kv_file.h missing
probe adapters/model app/engine.h missing
probe adapters/model adapters/http/http_api.h missing
probe adapters/store adapters/store/disk_store.h ok
probe adapters/store adapters/model/model.h missing
probe adapters/store app/engine.h missing
probe adapters/remote adapters/remote/redis_tier.h ok
probe adapters/remote ports/remote_tier.h ok
probe adapters/remote adapters/store/disk_store.h missing
probe adapters/remote adapters/model/model.h missing
probe adapters/remote app/engine.h missing
probe adapters/remote adapters/http/http_api.h missing
probe adapters/store adapters/remote/redis_tier.h missing
probe adapters/http adapters/http/http_api.h ok
probe adapters/http adapters/chat/tool_grammar.h ok
probe adapters/http app/grammar.h missing
probe adapters/http app/engine.h missing
probe adapters/http adapters/model/model.h missing
probe adapters/http adapters/store/disk_store.h missing

climbing=$(grep -rn '#include *"\.\./' "$src/src" || true)
if [ -n "$climbing" ]; then
    echo "FAIL: includes in src/ must not climb with ../:"
    echo "$climbing"
    fail=1
fi

if [ $fail -eq 0 ]; then echo "layers: all probes as expected"; fi
exit $fail
