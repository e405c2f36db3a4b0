#!/usr/bin/env bash
# stubcost.sh BINARY - counts, with callgrind, the instructions per call of a
# loop of plain calls and of a loop of calls through a generated stub whose
# callee is in the caller's domain, and prints the difference per call.
set -euo pipefail
bin=${1:?usage: stubcost.sh BINARY}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
  --toggle-collect=loop_plain --toggle-collect=loop_stub "$bin" >/dev/null 2>"$out/log" || {
  cat "$out/log" >&2
  exit 1
}
callgrind_annotate --inclusive=yes "$out/cg" >"$out/ann" 2>/dev/null
ir() { awk -v f="$1" '$0 ~ ":"f"[ (]|:"f"$" { gsub(",", "", $1); print $1; exit }' "$out/ann"; }
plain=$(ir loop_plain)
stub=$(ir loop_stub)
[ -n "$plain" ] && [ -n "$stub" ] || { echo "stubcost: no counts in callgrind output" >&2; exit 1; }
awk -v p="$plain" -v s="$stub" -v n=1000000 'BEGIN {
  printf "plain_call_instr %.2f instr\n", p / n
  printf "direct_stub_instr %.2f instr\n", s / n
  printf "direct_stub_extra_instr %.2f instr (target <= 5)\n", (s - p) / n
}'
