# port.sh - sourced by the benchmark scripts that start the example server:
# free_port prints a loopback TCP port nothing listens on (0 when 50 tries
# found none).
free_port() {
    for _ in $(seq 1 50); do
        local p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo 0
}
