# Quick start: `make demo` and `make test`. CMake and CTest do the work.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure --no-tests=error

.PHONY: all deps build build-asan demo test test-release test-asan bench clean

all: build

deps:
	@scripts/deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# the sanitizer build uses clang: both compilers see every file with -Werror
build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DQTN_SANITIZE=ON -DQTN_FUZZ=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

demo: build
	@$(BUILD)/examples/demo

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

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
