# Quick start: `make demo` and `make test`. CMake and CTest do the work.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure --no-tests=error

.PHONY: all deps build build-asan demo demo-tour test test-release test-asan bench clean

all: build

deps:
	@scripts/deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc >/dev/null
	@MAKEFLAGS=--no-print-directory cmake --build $(BUILD) -j$(JOBS)

# the sanitizer build uses clang: both compilers see every file with -Werror
build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DQTN_SANITIZE=ON -DQTN_FUZZ=ON >/dev/null
	@MAKEFLAGS=--no-print-directory cmake --build $(ASAN_BUILD) -j$(JOBS)

# the main demo: the document server under quarantine run --policy adaptive,
# a concurrency bug on, under load; what happened, and what the store knows
demo: build
	@examples/server/demo.sh $(BUILD)

# the tour of one component (faults, restarts, a host crash, attribution)
demo-tour: build
	@rm -f $(BUILD)/demo-store.db $(BUILD)/demo-store.db-wal $(BUILD)/demo-store.db-shm
	@$(BUILD)/quarantine run --store $(BUILD)/demo-store.db -- $(BUILD)/examples/demo
	@echo
	@echo "quarantine report --store $(BUILD)/demo-store.db"
	@$(BUILD)/quarantine report --store $(BUILD)/demo-store.db

test: test-release test-asan

test-release: build
	@cd $(BUILD) && ctest $(CTEST_ARGS) -j2

test-asan: build-asan
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS) -j2

bench: build
	@$(BUILD)/bench/crossing
	@echo
	@$(BUILD)/bench/restart
	@echo
	@bench/stubcost.sh $(BUILD)/bench/stubcost
	@echo
	@$(BUILD)/bench/plan
	@echo
	@$(BUILD)/bench/sim
	@echo
	@bench/server.sh $(BUILD)
	@echo
	@bench/availability.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
