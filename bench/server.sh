#!/usr/bin/env bash
# server.sh BUILD [--seconds S] [--rounds R] [--quick] - what isolation costs
# the example server under load, bugs off: the same fixed load (16 keep-alive
# connections of qtn-load, GETs, HTML pages, PUTs and queries) against
#
#   host          every component in the host
#   hot_isolated  the component with the most calls in the host run, in a
#                 domain of its own (the rest in the host)
#   all_isolated  every component in a domain of its own
#   hot_follow    as hot_isolated, with QTN_FOLLOW=1 (the domain's threads
#                 sleep on their caller's CPU)
#
# side by side: the configurations take turns, R rounds of S seconds each,
# and each figure is the median of its rounds. Per configuration it prints
#   rps_<cfg>            requests served a second
#   ctx_per_req_<cfg>    context switches of the server's processes (the
#                        host and its domains) per request
#   cpu_us_per_req_<cfg> their CPU time per request
#   crossings_per_req_<cfg>  crossings the runtime counted per request
# then the throughput ratios. Context switches and CPU come from `perf stat`
# (software counters, inherited by the domain processes); without perf those
# lines say n/a.
set -uo pipefail
B=${1:-build}
shift || true
SECS=5
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --quick) SECS=1; ROUNDS=1; shift ;;
    *) echo "usage: server.sh BUILD [--seconds S] [--rounds R] [--quick]" >&2; exit 2 ;;
    esac
done
SRV=$B/examples/server/server
LOAD=$B/bench/qtn-load
for f in "$SRV" "$LOAD"; do
    [ -x "$f" ] || { echo "server.sh: $f is missing (build first)" >&2; exit 1; }
done
dir=$B/bench-server
rm -rf "$dir"
mkdir -p "$dir"
COMPONENTS="cache ratelimit accesslog render query json zlib"
PERF=()
if command -v perf >/dev/null && perf stat -e context-switches true >/dev/null 2>&1; then
    PERF=(perf stat -x, -e context-switches,task-clock -o)
fi

# shellcheck source=bench/port.sh
. "$(dirname "$0")/port.sh"

# one NAME PLAN ROUND [ENV...]: a server, the load, its figures in $dir/NAME.ROUND
one() {
    local name=$1 plan=$2 round=$3 port d=$dir/$1.$3
    shift 3
    mkdir -p "$d"
    port=$(free_port)
    local cmd=("$SRV" --port "$port")
    [ ${#PERF[@]} -gt 0 ] && cmd=("${PERF[@]}" "$d/perf" "${cmd[@]}")
    env "$@" QTN_PLAN="$plan" "${cmd[@]}" > "$d/server.out" 2> "$d/server.err" &
    local top=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$d/server.out" 2>/dev/null && break
        sleep 0.05
    done
    "$LOAD" --port "$port" --connections 16 --seconds "$SECS" --keys 1000 --gzip \
        --mix get=50,html=20,put=20,query=10 > "$d/load.out" 2>&1
    curl -s "http://127.0.0.1:$port/stats" > "$d/stats.json" 2>/dev/null
    # the server itself, not perf: perf prints its counts once the server ends
    for p in $(pgrep -f -- "--port $port\$"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = server ] && kill -TERM "$p" 2>/dev/null
    done
    wait "$top" 2>/dev/null
    local ok pre rps cs tc calls crossings
    ok=$(awk '$1 == "requests_ok" {print $2}' "$d/load.out")
    pre=$(awk '$1 == "prefill_ok" {print $2}' "$d/load.out")
    rps=$(awk '$1 == "rps" {print $2}' "$d/load.out")
    # /stats counts from the start: the prefill's requests are in them too
    crossings=$(grep -o '"crossings":[0-9]*' "$d/stats.json" | awk -F: '{s += $2} END {print s + 0}')
    calls=$(grep -o '"calls":[0-9]*' "$d/stats.json" | awk -F: '{s += $2} END {print s + 0}')
    cs=n/a tc=n/a
    if [ -s "$d/perf" ]; then
        cs=$(awk -F, '$3 == "context-switches" {print $1}' "$d/perf")
        tc=$(awk -F, '$3 == "task-clock" {print $1}' "$d/perf")
    fi
    echo "${rps:-0} ${ok:-0} ${pre:-0} $cs $tc $crossings $calls" > "$d/figures"
}

# the hottest component: the most calls in a host run
one probe "" 0
hot=$(for c in $COMPONENTS; do
    n=$(grep -o "\"$c\":{[^}]*}" "$dir/probe.0/stats.json" | grep -o '"calls":[0-9]*' | cut -d: -f2)
    echo "${n:-0} $c"
done | sort -rn | head -1 | cut -d' ' -f2)
all=""
i=1
for c in $COMPONENTS; do all="$all $c=$i"; i=$((i + 1)); done
echo "hottest_component $hot"

for r in $(seq 1 "$ROUNDS"); do
    one host "" "$r"
    one hot_isolated "$hot=1" "$r"
    one all_isolated "$all" "$r"
    one hot_follow "$hot=1" "$r" QTN_FOLLOW=1
done

med() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for cfg in host hot_isolated all_isolated hot_follow; do
    rps=$(for r in $(seq 1 "$ROUNDS"); do cut -d' ' -f1 "$dir/$cfg.$r/figures"; done | med)
    eval "R_$cfg=$rps"
    printf "rps_%s %s req/s\n" "$cfg" "$rps"
    if [ ${#PERF[@]} -gt 0 ]; then
        ctx=$(for r in $(seq 1 "$ROUNDS"); do
            awk '{n = $2 + $3; if (n > 0 && $4 != "n/a") printf "%.3f\n", $4 / n}' "$dir/$cfg.$r/figures"
        done | med)
        cpu=$(for r in $(seq 1 "$ROUNDS"); do
            awk '{n = $2 + $3; if (n > 0 && $5 != "n/a") printf "%.2f\n", $5 * 1000 / n}' "$dir/$cfg.$r/figures"
        done | med)
        printf "ctx_per_req_%s %s count\ncpu_us_per_req_%s %s us\n" "$cfg" "$ctx" "$cfg" "$cpu"
    else
        printf "ctx_per_req_%s n/a count\ncpu_us_per_req_%s n/a us\n" "$cfg" "$cfg"
    fi
    xr=$(for r in $(seq 1 "$ROUNDS"); do
        awk '{n = $2 + $3; if (n > 0) printf "%.3f\n", $6 / n}' "$dir/$cfg.$r/figures"
    done | med)
    printf "crossings_per_req_%s %s count\n" "$cfg" "$xr"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
echo
echo "hot_isolated/host $(ratio "$R_hot_isolated" "$R_host") x (target >= 0.95)"
echo "all_isolated/host $(ratio "$R_all_isolated" "$R_host") x (target >= 0.85)"
echo "hot_follow/host $(ratio "$R_hot_follow" "$R_host") x"
echo "rounds $ROUNDS count"
echo "seconds_per_round $SECS s"
