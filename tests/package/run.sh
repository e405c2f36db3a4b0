#!/usr/bin/env bash
# run.sh BUILD SRC CC [CFLAGS] - installs the build in BUILD into a new prefix, then
# builds the project in SRC against it twice, as a user outside this tree
# would: with find_package(Quarantine) and the CMake function, and with
# `quarantine gen` and pkg-config by hand. Each program runs with its
# component in a domain and in the host and must say so. CFLAGS: what the
# build's own objects were compiled with that a program linking them needs
# too (the sanitizers).
set -euo pipefail
B=$1 S=$2 CC=$3 FLAGS=${4:-}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
step() { echo "== $*"; }
check() { # check WANT CMD...: runs CMD, whose one line must be WANT
    local want=$1 got
    shift
    got=$("$@")
    echo "$got"
    if [ "$got" != "$want" ]; then
        echo "run.sh: $*: '$got', not '$want'" >&2
        exit 1
    fi
}

step "cmake --install into a new prefix"
cmake --install "$B" --prefix "$t/prefix" > "$t/install.log"

step "find_package(Quarantine) in a project of its own"
cmake -S "$S" -B "$t/build" -DCMAKE_C_COMPILER="$CC" -DCMAKE_PREFIX_PATH="$t/prefix" \
    -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="$FLAGS" > "$t/configure.log"
cmake --build "$t/build" > "$t/build.log" || { cat "$t/build.log"; exit 1; }
check "ISOLATED in a domain" env QTN_PLAN="shout=1" "$t/build/pkgtest"
check "ISOLATED in the host" env QTN_PLAN="" "$t/build/pkgtest"

step "quarantine gen and pkg-config"
"$t/prefix/bin/quarantine" gen -o "$t/stubs.c" -I "$S/ext" "$S/shout.h"
export PKG_CONFIG_PATH="$t/prefix/lib/pkgconfig"
# shellcheck disable=SC2046,SC2086 # the flags are words
"$CC" $FLAGS -o "$t/pc" "$S/main.c" "$S/shout.c" "$t/stubs.c" -I "$S" -I "$S/ext" \
    $(pkg-config --cflags --libs quarantine) @"$t/stubs.flags"
check "ISOLATED in a domain" env QTN_PLAN="shout=1" "$t/pc"
check "ISOLATED in the host" env QTN_PLAN="" "$t/pc"
echo "package ok"
