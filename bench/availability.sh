#!/usr/bin/env bash
# availability.sh BUILD [--seconds S] [--quick] - the example server under the
# same load, configuration by configuration, side by side in one run:
#
#   plain        the server with no stubs and no runtime, under a restart
#                loop (quarantine run of a program without the runtime: the
#                crash-restart baseline people use today)
#   host         the runtime, every component in the host
#   isolated     every component in a domain of its own
#   optimistic, pessimistic, adaptive
#                quarantine run --policy MODE, from an empty store
#
# each with its three concurrency bugs off, and on (_bugs). It prints
# `name value unit` lines per configuration (rps_, served_pct_, p99_ms_,
# host_crashes_, plan_changes_), then the ratios the targets are about.
# --only CFG,CFG,... runs those configurations alone (no ratios).
set -uo pipefail
B=${1:-build}
shift || true
SECS=20
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECS=$2; shift 2 ;;
    --quick) SECS=2; shift ;;
    --only) ONLY=",$2,"; shift 2 ;;
    *) echo "usage: availability.sh BUILD [--seconds S] [--quick] [--only CFG,...]" >&2; exit 2 ;;
    esac
done
Q=$B/quarantine
LOAD=$B/bench/qtn-load
dir=$B/availability
rm -rf "$dir"
mkdir -p "$dir"
ALL="cache=1 ratelimit=2 accesslog=3 render=4 query=5 json=6 zlib=7"
BUGS="SERVER_BUGS=all SERVER_BUG_WINDOW_US=200 SERVER_BUG_WINDOW_PCT=2"

# shellcheck source=bench/port.sh
. "$(dirname "$0")/port.sh"

# run NAME BUGS(0/1) SERVER-BINARY ENV-PLAN SUPERVISOR-ARGS...
run() {
    local name=$1 bugs=$2 bin=$3 plan=$4
    shift 4
    if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then
        return 0
    fi
    local d=$dir/$name port
    mkdir -p "$d"
    port=$(free_port)
    local envs=(QTN_QUIET_FAULTS=1)
    [ "$bugs" = 1 ] && envs+=($BUGS)
    [ -n "$plan" ] && envs+=(QTN_PLAN="$plan")
    # the supervisor holds the listening socket (--listen): connections made
    # while a crashed server starts again wait, in every configuration
    env "${envs[@]}" "$Q" run --store "$d/store.db" --backoff-ms 20 --stats-interval 2 \
        --listen "$port" "$@" -- "$bin" --data "$d/docs" > "$d/server.out" 2> "$d/run.log" &
    local sup=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$d/server.out" 2>/dev/null && break
        sleep 0.1
    done
    "$LOAD" --port "$port" --connections 16 --seconds "$SECS" --keys 1000 --gzip \
        --mix get=50,html=20,put=20,query=10 > "$d/load.out" 2>&1
    kill -TERM "$sup" 2>/dev/null
    wait "$sup" 2>/dev/null
    local rps served p99 crashes plans
    rps=$(awk '$1 == "rps" {print $2}' "$d/load.out")
    served=$(awk '$1 == "served_pct" {print $2}' "$d/load.out")
    p99=$(awk '$1 == "p99_ms" {print $2}' "$d/load.out")
    crashes=$(grep -c "event=crash " "$d/run.log")
    plans=$(grep -c "event=plan " "$d/run.log")
    printf "rps_%s %s req/s\nserved_pct_%s %s pct\np99_ms_%s %s ms\nhost_crashes_%s %s count\nplan_changes_%s %s count\n" \
        "$name" "${rps:-0}" "$name" "${served:-0}" "$name" "${p99:-0}" "$name" "$crashes" "$name" "$plans"
    eval "R_$name=${rps:-0} S_$name=${served:-0} C_$name=$crashes"
}

for bugs in 0 1; do
    s=""
    [ "$bugs" = 1 ] && s=_bugs
    run plain$s $bugs "$B/examples/server/server-plain" ""
    run host$s $bugs "$B/examples/server/server" ""
    run isolated$s $bugs "$B/examples/server/server" "$ALL"
    run optimistic$s $bugs "$B/examples/server/server" "" --policy optimistic
    run pessimistic$s $bugs "$B/examples/server/server" "" --policy pessimistic
    run adaptive$s $bugs "$B/examples/server/server" "" --policy adaptive
done
[ -n "$ONLY" ] && exit 0

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
echo "host/plain $(ratio "$R_host" "$R_plain") x"
echo "isolated/plain $(ratio "$R_isolated" "$R_plain") x"
echo "adaptive_bugs/plain $(ratio "$R_adaptive_bugs" "$R_plain") x"
echo "served_pct_adaptive_bugs $S_adaptive_bugs pct"
echo "host_crashes_isolated_bugs $C_isolated_bugs count"
echo "host_crashes_adaptive_bugs $C_adaptive_bugs count (3 bugs)"
echo "served_pct_plain_bugs $S_plain_bugs pct"
echo "seconds_per_configuration $SECS s"
