#!/usr/bin/env bash
# demo.sh BUILD - the main demo: the document server under
# `quarantine run --policy adaptive`, with a real concurrency bug switched
# on in its access log, under load from qtn-load; then what happened, told,
# and what the store knows (`quarantine report`). Ends by itself, stops
# every process it started, and takes about a minute.
set -euo pipefail
B=${1:-build}
SECS=${DEMO_SECONDS:-30}
# the overhead budget (the default, 25%): it binds boundaries drawn on
# suspicion; once the access log has crashed the server, its boundary is a
# repair and is drawn even where it costs more (DEMO_BUDGET=N to try others)
BUDGET=${DEMO_BUDGET:-25}
Q=$B/quarantine
SERVER=$B/examples/server/server
LOAD=$B/bench/qtn-load
dir=$B/demo
rm -rf "$dir"
mkdir -p "$dir"

# a port nobody listens on
port=
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        port=$p
        break
    fi
done
[ -n "$port" ] || { echo "demo: no free port found" >&2; exit 1; }

sup=
cleanup() {
    if [ -n "$sup" ] && kill -0 "$sup" 2>/dev/null; then
        kill -TERM "$sup" 2>/dev/null || true
        wait "$sup" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

cat <<EOF
quarantine demo: the document server ($SERVER), a thread per connection,
seven components, under

  quarantine run --policy adaptive --budget $BUDGET --listen $port -- server --data $dir/docs

with the concurrency bug of its access log switched on: an atomicity
violation (Apache bug 25520's pattern: the check for room in the log buffer
and the copy into it are not one step), which under concurrent load writes
past the buffer. The supervisor holds the listening socket (--listen), so
connections made while a crashed server starts again wait instead of being
refused. The store starts empty: every component's code is new to
the policy. The overhead budget is $BUDGET% of the CPU: it caps the
boundaries drawn on suspicion; a component whose crashes are proven is
isolated beyond it if its crashes cost more than its boundary. qtn-load
drives 16 connections for $SECS s.

EOF

t0=$(date +%s.%N)
# the supervisor's log, each line stamped with the time it came
SERVER_BUGS=log SERVER_BUG_WINDOW_US=200 SERVER_BUG_WINDOW_PCT=2 QTN_QUIET_FAULTS=1 \
    "$Q" run --store "$dir/store.db" --policy adaptive --budget "$BUDGET" --backoff-ms 20 --stats-interval 2 \
    --listen "$port" -- "$SERVER" --data "$dir/docs" \
    > "$dir/server.out" 2> >(while IFS= read -r l; do printf '%s %s\n' "$(date +%s.%N)" "$l"; done > "$dir/run.log") &
sup=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$dir/server.out" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$dir/server.out" || { echo "demo: the server did not start; its log:" >&2; cat "$dir/run.log" >&2; exit 1; }
tl=$(date +%s.%N)
"$LOAD" --port "$port" --connections 16 --seconds "$SECS" --slices-ms 1000 --gzip \
    --mix get=50,html=20,put=20,query=10 > "$dir/load.out"
gave_up=
if kill -TERM "$sup" 2>/dev/null; then
    wait "$sup" || true
else # quarantine run ended before the load did: it gave up on a crash loop
    st=0
    wait "$sup" || st=$?
    gave_up="quarantine run ended before the load did (exit status $st): $(grep -m1 'not starting it again' "$dir/run.log" | cut -d' ' -f2-)"
fi
sup=
sleep 0.2

# ---- what happened -----------------------------------------------------------
awk -v t0="$t0" -v tl="$tl" -v secs="$SECS" '
function at(t) { return sprintf("t=%5.1f s", t - tl) }
FILENAME ~ /run.log$/ {
    t = $1; $1 = ""; line = substr($0, 2)
    if (line ~ /event=plan / && !seen_plan[line]++) {
        match(line, /to="[^"]*"/); to = substr(line, RSTART + 4, RLENGTH - 5)
        match(line, /reason="[^"]*"/); why = substr(line, RSTART + 8, RLENGTH - 9)
        sub(/;.*/, "", why)
        restart = line ~ /when=restart/ ? " (for the start after the crash)" : ""
        printf "  %s  plan%s: %s\n             %s\n", at(t), restart, to, why
    } else if (line ~ /event=host-crash/) {
        match(line, /component=[^ ]*/); c = substr(line, RSTART + 10, RLENGTH - 10)
        match(line, /signal=[^ ]*/); s = substr(line, RSTART + 7, RLENGTH - 7)
        printf "  %s  host crash: the server died of %s, blamed on %s; quarantine run starts it again\n", at(t), s, c
        crashes++; crash_t[crashes] = t - tl
    } else if (line ~ /event=start / && started++) {
        printf "  %s  the server is back\n", at(t)
        back_t[crashes] = t - tl
    } else if (line ~ /event=fault /) {
        match(line, /component=[^ ]*/); c = substr(line, RSTART + 10, RLENGTH - 10)
        match(line, /calls_failed=[0-9]*/); f = substr(line, RSTART + 13, RLENGTH - 13)
        faults++; failed_calls += f
        if (faults == 1)
            printf "  %s  first fault in an isolated domain: %s, %d call(s) failed, the domain was back in well under a millisecond\n", at(t), c, f
    } else if (line ~ /event=budget/ && !said_budget++) {
        match(line, /note="[^"]*"/); n = substr(line, RSTART + 6, RLENGTH - 7)
        printf "  %s  budget: %s\n", at(t), n
    }
    next
}
FILENAME ~ /load.out$/ && $1 == "slice" { ok[int($2 + 0.5)] = $3; bad[int($2 + 0.5)] = $4; next }
FILENAME ~ /load.out$/ { v[$1] = $2 }
END {
    if (faults > 1)
        printf "  ...        %d faults in isolated domains in all, %d calls failed with them\n", faults, failed_calls
    # phases: before the first host crash; after it, the seconds a restart
    # fell in (the server down for part of them) and the others
    printf "\nrequests, per phase:\n"
    p1 = crashes ? int(crash_t[1]) : secs
    for (i = 0; i < secs; i++) {
        down = 0
        for (k = 1; k <= crashes; k++)
            if (i + 1 > crash_t[k] && i < (k in back_t ? back_t[k] : secs))
                down = 1
        ph = i < p1 ? 1 : down ? 2 : 3
        o[ph] += ok[i]; b[ph] += bad[i]; nsec[ph]++
    }
    if (crashes) {
        printf "  %-48s served %7d, failed %6d\n", sprintf("%d-%d s, before the first host crash", 0, p1), o[1], b[1]
        printf "  %-48s served %7d, failed %6d (mostly refused: nobody listening)\n", sprintf("%d s after it, a restart in each (%d in all)", nsec[2], crashes), o[2], b[2]
        printf "  %-48s served %7d, failed %6d (calls in flight at faults in isolated domains)\n", sprintf("%d s after it with the server up", nsec[3]), o[3], b[3]
    } else {
        printf "  %3d-%-3d s  served %7d, failed %6d: no host crash at all\n", 0, secs, o[1], b[1]
    }
    printf "  in all: %s%% served, %d req/s, p99 %s ms\n", v["served_pct"], v["rps"], v["p99_ms"]
}' "$dir/run.log" "$dir/load.out"

[ -z "$gave_up" ] || printf '\n%s\n' "$gave_up"
echo
echo "quarantine report --store $dir/store.db --latest 3"
"$Q" report --store "$dir/store.db" --latest 3
echo
echo "quarantine plan --store $dir/store.db --budget $BUDGET --explain"
"$Q" plan --store "$dir/store.db" --budget "$BUDGET" --explain
