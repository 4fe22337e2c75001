#!/bin/sh
# `make install DESTDIR=D PREFIX=/usr` puts every file where docs/install.md
# says, the manual page renders without a warning and tells every option of
# `semantic serve`, the config example is one the server reads, a second
# install keeps an edited config, and `make uninstall` takes the rest away.
#
# usage: test_install.sh SRC_ROOT BUILD_DIR
# Installs from BUILD_DIR (the build under test: INSTALL_BUILD), into a
# temporary folder removed at the end. Exit 77 (skipped) without groff.
set -u
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if ! command -v groff >/dev/null 2>&1; then
    echo "skipped: groff is missing (it renders the manual page): run tools/install-deps"
    exit 77
fi

# The test may run under `make check`: the inner make gets no jobserver of it.
run_make() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$src" "$@" INSTALL_BUILD="$build" JOBS=1
}

d=$tmp/root
if ! run_make install DESTDIR="$d" PREFIX=/usr >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: make install DESTDIR=$d PREFIX=/usr"
    exit 1
fi

# ---------------------------------------------------------------- the files
for f in usr/bin/semantic usr/share/man/man1/semantic.1 \
         usr/share/doc/semantic/README.md usr/share/doc/semantic/docs/install.md \
         usr/share/doc/semantic/docs/cli.md usr/share/doc/semantic/docs/cache-format.md \
         usr/share/doc/semantic/examples/semantic.conf \
         usr/lib/systemd/system/semantic.service etc/semantic/semantic.conf; do
    [ -f "$d/$f" ] || bad "not installed: /$f"
done
[ -x "$d/usr/bin/semantic" ] || bad "/usr/bin/semantic is not executable"
"$d/usr/bin/semantic" version | grep -q '^semantic [0-9]' || bad "the installed program does not run"
cmp -s "$src/dist/semantic.conf" "$d/etc/semantic/semantic.conf" ||
    bad "/etc/semantic/semantic.conf is not the example"
# Nothing outside the prefix but the config.
extra=$(cd "$d" && find . -type f | grep -v '^\./usr/' | grep -v '^\./etc/semantic/semantic\.conf$')
[ -z "$extra" ] || bad "files outside /usr and the config: $extra"

# The unit names this install's paths.
unit=$d/usr/lib/systemd/system/semantic.service
grep -q '^ExecStart=/usr/bin/semantic serve --config /etc/semantic/semantic.conf ' "$unit" ||
    bad "the unit's ExecStart does not name /usr/bin/semantic and /etc/semantic/semantic.conf"
grep -q '^LoadCredential=api-keys:/etc/semantic/api-keys$' "$unit" || bad "LoadCredential path"
if grep -q '@[A-Z]*@' "$unit"; then bad "placeholders left in the unit"; fi

# ---------------------------------------------------------------- the manual page
page=$d/usr/share/man/man1/semantic.1
groff -man -Tutf8 -ww -z "$page" >"$tmp/groff.err" 2>&1
if [ -s "$tmp/groff.err" ]; then bad "groff warns about semantic.1:"; cat "$tmp/groff.err"; fi
groff -man -Tutf8 -P-c -P-b -P-u "$page" 2>/dev/null >"$tmp/page.txt"
if command -v man >/dev/null 2>&1; then
    MANWIDTH=80 man -l "$page" >"$tmp/man.txt" 2>"$tmp/man.err" || bad "man -l semantic.1 failed"
    [ -s "$tmp/man.err" ] && { bad "man -l semantic.1 warns:"; cat "$tmp/man.err"; }
fi
# Every command and every option of serve's help is in the page.
for cmd in RUN PERPLEXITY TOKENIZE INFO BENCH MKMODEL AGENTS SERVE; do
    grep -q "^SEMANTIC $cmd" "$tmp/page.txt" || bad "the page has no section SEMANTIC $cmd"
done
"$d/usr/bin/semantic" serve --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u >"$tmp/opts"
[ "$(wc -l <"$tmp/opts")" -gt 30 ] || bad "serve --help lists too few options"
while read -r opt; do
    grep -q -- "$opt" "$tmp/page.txt" || bad "the page does not mention $opt"
done <"$tmp/opts"
grep -q 'SEMANTIC_CONFIG' "$tmp/page.txt" || bad "the page's ENVIRONMENT lacks SEMANTIC_CONFIG"

# ---------------------------------------------------------------- the config example
# The server reads it: with a model that is not there it stops on the
# model, not on a line of the file.
"$d/usr/bin/semantic" serve --config "$d/etc/semantic/semantic.conf" --port 0 \
    --cache-dir '' --models-dir '' --model "$tmp/absent.gguf" >"$tmp/serve.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] || ! grep -q "absent.gguf" "$tmp/serve.out" ||
        grep -q "semantic.conf:" "$tmp/serve.out"; then
    bad "the example config: exit $rc, expected a failure on the missing model:"
    cat "$tmp/serve.out"
fi

# ---------------------------------------------------------------- again, and away
echo "port = 9999 # edited" >>"$d/etc/semantic/semantic.conf"
run_make install DESTDIR="$d" PREFIX=/usr >"$tmp/install2.log" 2>&1 || bad "second make install"
grep -q 'edited' "$d/etc/semantic/semantic.conf" || bad "a second install replaced the config"
grep -q 'Keeping: ' "$tmp/install2.log" || bad "a second install does not say it kept the config"
run_make uninstall DESTDIR="$d" >"$tmp/uninstall.log" 2>&1 || bad "make uninstall"
left=$(cd "$d" && find . -type f)
[ "$left" = "./etc/semantic/semantic.conf" ] || bad "after make uninstall: $left"
[ -d "$d/usr/share/doc/semantic" ] && bad "make uninstall left /usr/share/doc/semantic"

[ "$fail" -eq 0 ] && echo "make install: every file in place, the page renders, uninstall clean"
exit "$fail"
