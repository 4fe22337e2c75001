# semantic - top-level driver for CMake and CTest.
#
#   make            build the optimized binary (build/release/semantic)
#   make check      install what is missing, then build and run the default
#                   test suite in three builds: optimized, ASan+UBSan, and
#                   TSan (concurrency tests)
#   make serve      install what is missing, build, and serve the bundled model
#   make install    build, then install the program, its manual page, the docs,
#                   the systemd unit and the config (PREFIX, DESTDIR, SYSCONFDIR;
#                   docs/install.md); make uninstall removes them again
#   make stress | fuzz | bench   long-running suites, not part of check
#
# JOBS sets build parallelism (default: number of cores).

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest

BUILD_release := build/release
BUILD_asan    := build/asan
BUILD_tsan    := build/tsan

CONFIG_release := -DCMAKE_BUILD_TYPE=Release
CONFIG_asan    := -DCMAKE_BUILD_TYPE=Debug -DSEM_SANITIZE=address
CONFIG_tsan    := -DCMAKE_BUILD_TYPE=Debug -DSEM_SANITIZE=thread

# Tests each build runs (a CTest label regex; empty = all).
LABELS_release :=
LABELS_asan    :=
LABELS_tsan    := concurrency

.PHONY: all build check check-release check-asan check-tsan serve deps stress fuzz bench clean \
        install uninstall

all: build

build: $(BUILD_release)/Makefile
	$(CMAKE) --build $(BUILD_release) -j $(JOBS)

# The client tests' npm packages are installed once, in build/node.
build/%/Makefile:
	$(CMAKE) -S . -B build/$* $(CONFIG_$*) -DSEM_NODE_DIR=$(CURDIR)/build/node >/dev/null

check: deps
	$(MAKE) check-release check-asan check-tsan
	@echo "make check: all three builds passed"

# One test run per build: $(call run_tests,NAME)
define run_tests
	$(CMAKE) --build build/$(1) -j $(JOBS)
	cd build/$(1) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(CTEST) --output-on-failure -j $(JOBS) $(if $(LABELS_$(1)),-L '$(LABELS_$(1))')
endef

check-release: build/release/Makefile
	$(call run_tests,release)
check-asan: build/asan/Makefile
	$(call run_tests,asan)
check-tsan: build/tsan/Makefile
	$(call run_tests,tsan)

deps:
	./tools/install-deps

# The bundled 260K-parameter model, agent memory in the default folder
# ($XDG_DATA_HOME/semantic/cache, else ~/.local/share/semantic/cache: where
# `semantic agents ls` looks too); add options with
# SERVE_ARGS="--port 8080 --api-key KEY".
SERVE_MODEL ?= tests/data/models/stories260K.gguf
serve: deps build
	@echo 'make serve: requests are answered once the log says "ready" (Ctrl-C stops the server)'
	$(BUILD_release)/semantic serve -m $(SERVE_MODEL) $(SERVE_ARGS)

# Installation, from the optimized build (INSTALL_BUILD: another configured
# build folder). PREFIX /usr/local by default; DESTDIR is put in front of
# every path (a staging folder for packages); SYSCONFDIR, the folder of
# semantic/semantic.conf, defaults to /etc for the prefixes /usr and
# /usr/local, else PREFIX/etc. An existing semantic.conf is never replaced.
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?=
INSTALL_BUILD ?= $(BUILD_release)

# (A build folder configured already, of any generator, is used as it is.)
install: $(if $(wildcard $(INSTALL_BUILD)/CMakeCache.txt),,$(INSTALL_BUILD)/Makefile)
	$(CMAKE) -S . -B $(INSTALL_BUILD) -DSEM_SYSCONFDIR="$(SYSCONFDIR)" >/dev/null
	$(CMAKE) --build $(INSTALL_BUILD) --target semantic man -j $(JOBS)
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(INSTALL_BUILD) --prefix "$(PREFIX)"

# Removes what the last install from INSTALL_BUILD wrote (its manifest),
# under the same DESTDIR; the config file stays (it is the admin's).
uninstall:
	@test -f $(INSTALL_BUILD)/install_manifest.txt || \
	  { echo "make uninstall: nothing installed from $(INSTALL_BUILD) (no install_manifest.txt)"; exit 1; }
	@while IFS= read -r f || [ -n "$$f" ]; do echo "Removing: $(DESTDIR)$$f"; rm -f "$(DESTDIR)$$f"; done \
	  < $(INSTALL_BUILD)/install_manifest.txt
	@doc=$$(sed -n 's|/README.md$$||p' $(INSTALL_BUILD)/install_manifest.txt); \
	  if [ -n "$$doc" ]; then for d in "$$doc/docs/img" "$$doc/docs" "$$doc/examples" "$$doc"; do \
	    rmdir "$(DESTDIR)$$d" 2>/dev/null || true; done; fi

# Long-running suites, not part of check.
fuzz:
	./tools/run-fuzzers

# The default suite with its soak sizes raised (SEM_STRESS=1), optimized build.
stress: build/release/Makefile
	$(CMAKE) --build $(BUILD_release) -j $(JOBS)
	cd $(BUILD_release) && SEM_STRESS=1 $(CTEST) --output-on-failure

# Speed figures: matmul kernels and the engine on the bundled model; set
# BENCH_MODEL to a real-size model (see docs/performance.md).
BENCH_MODEL ?= tests/data/models/stories260K.gguf
bench: build
	$(BUILD_release)/bench_matmul
	$(BUILD_release)/bench_attention
	$(BUILD_release)/semantic bench -m $(BENCH_MODEL)
	$(BUILD_release)/semantic bench -m $(BENCH_MODEL) -p 0 --parallel 8

clean:
	rm -rf build
