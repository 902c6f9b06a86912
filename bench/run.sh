#!/usr/bin/env bash
# Reproduces the rows of BENCHMARKS.md: Rotor vs nats-server over WebSocket.
#
#   bench/run.sh            all scenarios
#   bench/run.sh fanout     only fan-out    (also: idle, connect, api, proxy, transports, cluster, delta)
#
# `cluster` (Rotor JSON, engine.type redis, the local Redis on 6379,
# bench/rotor-redis.json): 800/s fan-out with publisher and subscribers on one
# node, then cross-node: 1,000 subscribers on node B (CPU 0, port 8000), the
# publisher on node A (CPU 1 beside the load tool, port 8001).
#
# `transports` (Rotor JSON only): 800/s fan-out with subscribers on our raw
# WebSocket client without and with permessage-deflate (bench/rotor.json vs
# bench/rotor-transports.json, `websocket.compression`), and over
# unidirectional SSE (`uni_sse`) and over bidirectional HTTP-streaming
# emulation (`http_stream`); bytes on the wire per delivery. That config
# pings every 120 s: the tool's streaming subscribers cannot answer a ping
# (a pong goes through POST /emulation), and at the default 25 s the server
# would end them with 3012 before the run is over.
#
# `api` (Rotor only): HTTP API requests/s with wrk (`bench/api.lua`), 64
# connections on CPU 1 — publish vs the no-op ceilings (`GET /health`, and
# `/api/rpc` for an unregistered method: the whole API stack, no work), and a
# batch of 100 publishes vs 100 single publishes; then gRPC publish vs a no-op
# gRPC call with `rotor-bench grpc-api`.
#
# `proxy` (Rotor only): connects/s with a JWT (bench/rotor.json) vs without
# a token through the gRPC connect proxy (bench/rotor-proxy.json, backend
# `rotor-bench proxy-backend` on 127.0.0.1:10001, pinned to CPU 1 beside the
# load tool), alternating, PROXY_ROUNDS (3) times each; PROXY_CONNS (2000)
# connections, 50 in flight.
#
# CLIENT (default `lean`): the load tool's WebSocket client for fan-out, idle
# and connect-rate connections, `lean` (its own minimal client) or
# `tungstenite` (runs 1–7). Run 8 moved to `lean`: through tungstenite the
# tool nearly saturated its core reading Rotor, and its own queueing showed
# up in the latencies it measured.
#
# Each server runs pinned to CPU 0, the load tool to CPU 1; every scenario
# gets a freshly started server. Results go to bench/results/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000

ONLY=${1:-all}
DURATION=${DURATION:-20}
CLIENT=${CLIENT:-lean}
SUBS=${SUBS:-1000}
IDLE_CONNS=${IDLE_CONNS:-10000}
ROTOR_PORT=8000
NATS_WS_PORT=8080
ROTOR_URL="ws://127.0.0.1:${ROTOR_PORT}/connection/websocket"
NATS_URL="ws://127.0.0.1:${NATS_WS_PORT}"
NATS_BIN=${NATS_BIN:-/usr/sbin/nats-server}
# ROTOR_BIN: the server binary (A/B runs point it at an older build).
ROTOR_BIN=${ROTOR_BIN:-target/release/rotor}
OUT="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

# Other work on a shared machine steals the pinned cores; when running as
# root, servers and tool get a higher priority (NICE=0 to disable).
NICE=${NICE:-$([[ $(id -u) == 0 ]] && echo -10 || echo 0)}
PRIO=(nice -n "$NICE")
# With autogroup scheduling (the kernel default) nice values only count
# within one session, so a compiler started elsewhere still takes half a
# pinned core. As root, turn autogroup off for the run and restore it after.
AUTOGROUP=/proc/sys/kernel/sched_autogroup_enabled
AUTOGROUP_WAS=""
if [[ $(id -u) == 0 && -w $AUTOGROUP ]]; then
    AUTOGROUP_WAS=$(cat "$AUTOGROUP")
    echo 0 >"$AUTOGROUP"
fi
restore_autogroup() { if [[ -n "$AUTOGROUP_WAS" ]]; then echo "$AUTOGROUP_WAS" >"$AUTOGROUP"; fi; }

# BUILD=0 skips the build (A/B runs of prebuilt binaries while the tree changes).
if [[ ${BUILD:-1} == 1 ]]; then cargo build --release --bins; fi
BENCH=("${PRIO[@]}" taskset -c 1 target/release/rotor-bench)
{
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' (dirty)')"
    echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) x $(nproc)"
    echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel:  $(uname -r)"
    echo "rustc:   $(rustc --version)"
    echo "rotor:   $ROTOR_BIN ($(md5sum <"$ROTOR_BIN" | cut -c1-12))"
    echo "nats:    $("$NATS_BIN" --version)"
    echo "nice:    $NICE"
    echo "client:  $CLIENT"
    echo "autogroup: $(cat "$AUTOGROUP" 2>/dev/null || echo -) (was ${AUTOGROUP_WAS:-unchanged})"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

ROTOR_CONFIG=bench/rotor.json
SERVER_PID=""
BACKEND_PID=""
stop_backend() {
    if [[ -n "$BACKEND_PID" ]]; then
        kill "$BACKEND_PID" 2>/dev/null || true
        wait "$BACKEND_PID" 2>/dev/null || true
        BACKEND_PID=""
    fi
}
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap 'stop_server; stop_backend; restore_autogroup' EXIT

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "port $1 did not open" >&2
    return 1
}

start_server() { # rotor|nats
    stop_server
    case "$1" in
        rotor)
            "${PRIO[@]}" taskset -c 0 "$ROTOR_BIN" --config "$ROTOR_CONFIG" \
                --http_server.port "$ROTOR_PORT" >>"$OUT/rotor.log" 2>&1 &
            SERVER_PID=$!
            wait_port "$ROTOR_PORT" ;;
        nats)
            "${PRIO[@]}" taskset -c 0 "$NATS_BIN" -c bench/nats.conf >>"$OUT/nats.log" 2>&1 &
            SERVER_PID=$!
            wait_port "$NATS_WS_PORT" ;;
    esac
    sleep 1
}

url_of() { [[ "$1" == rotor ]] && echo "$ROTOR_URL" || echo "$NATS_URL"; }

run() { # name server args...
    local name=$1 server=$2
    shift 2
    start_server "$server"
    echo "### $name ($server)" | tee -a "$OUT/summary.txt"
    "${BENCH[@]}" "$@" --target "$server" --url "$(url_of "$server")" --client "$CLIENT" \
        --server-pid "$SERVER_PID" --label "$name" 2>&1 | tee "$OUT/$name-$server.txt" | tee -a "$OUT/summary.txt"
    stop_server
}

if [[ "$ONLY" == all || "$ONLY" == fanout ]]; then
    for server in rotor nats; do
        run fanout-800 "$server" fanout --subscribers "$SUBS" --rate 800 --duration "$DURATION"
        run fanout-1600 "$server" fanout --subscribers "$SUBS" --rate 1600 --duration "$DURATION"
    done
    run fanout-800-protobuf rotor fanout --protobuf --subscribers "$SUBS" --rate 800 --duration "$DURATION"
fi
if [[ "$ONLY" == all || "$ONLY" == idle ]]; then
    for server in rotor nats; do
        run idle "$server" idle --connections "$IDLE_CONNS"
    done
fi
if [[ "$ONLY" == all || "$ONLY" == connect ]]; then
    # Alternating rounds; 8,000 connections take about a second, long
    # enough that one scheduling hiccup does not decide the rate. 50 in
    # flight (runs 1-7) leaves Rotor waiting on round trips; 200 in flight
    # (a connect storm) measures how fast each server can take them.
    for round in $(seq 1 "${CONNECT_ROUNDS:-3}"); do
        for cc in 50 200; do
            for server in rotor nats; do
                run "connect-rate-$cc-$round" "$server" connect-rate \
                    --connections "${CONNECT_CONNS:-8000}" --concurrency "$cc"
            done
        done
    done
fi
if [[ "$ONLY" == all || "$ONLY" == proxy ]]; then
    PROXY_PORT=10001
    ROUNDS=${PROXY_ROUNDS:-3}
    CONNS=${PROXY_CONNS:-2000}
    # Bounded: the backend stops by itself even if this script dies.
    "${BENCH[@]}" proxy-backend --addr "127.0.0.1:$PROXY_PORT" --duration $((ROUNDS * 120 + 60)) \
        >>"$OUT/proxy-backend.log" 2>&1 &
    BACKEND_PID=$!
    wait_port "$PROXY_PORT"
    for round in $(seq 1 "$ROUNDS"); do
        ROTOR_CONFIG=bench/rotor.json
        run "connect-jwt-$round" rotor connect-rate --connections "$CONNS" --concurrency 50
        ROTOR_CONFIG=bench/rotor-proxy.json
        run "connect-proxy-$round" rotor connect-rate --connections "$CONNS" --concurrency 50 --no-token
    done
    ROTOR_CONFIG=bench/rotor.json
    stop_backend
    cat "$OUT/proxy-backend.log"
fi

if [[ "$ONLY" == all || "$ONLY" == transports ]]; then
    ROTOR_CONFIG=bench/rotor.json
    run fanout-800-ws-plain rotor fanout --sub-transport raw-ws --subscribers "$SUBS" --rate 800 --duration "$DURATION"
    ROTOR_CONFIG=bench/rotor-transports.json
    run fanout-800-ws-deflate rotor fanout --sub-transport raw-ws --subscribers "$SUBS" --rate 800 --duration "$DURATION"
    run fanout-800-uni-sse rotor fanout --sub-transport uni-sse --subscribers "$SUBS" --rate 800 --duration "$DURATION"
    run fanout-800-http-stream rotor fanout --sub-transport http-stream --subscribers "$SUBS" --rate 800 --duration "$DURATION"
    ROTOR_CONFIG=bench/rotor.json
fi

if [[ "$ONLY" == all || "$ONLY" == cluster ]]; then
    redis-cli ping >/dev/null
    ROTOR_CONFIG=bench/rotor-redis.json
    run fanout-800-redis-1node rotor fanout --subscribers "$SUBS" --rate 800 --duration "$DURATION"
    # Node A: where the publisher connects (the gRPC API port moved aside).
    "${PRIO[@]}" taskset -c 1 target/release/rotor --config "$ROTOR_CONFIG" \
        --http_server.port 8001 --grpc_api.port 10002 >>"$OUT/rotor-node-a.log" 2>&1 &
    NODE_A=$!
    wait_port 8001
    run fanout-800-redis-cross-node rotor fanout --subscribers "$SUBS" --rate 800 \
        --duration "$DURATION" --publish-url "ws://127.0.0.1:8001/connection/websocket"
    kill "$NODE_A" 2>/dev/null || true
    wait "$NODE_A" 2>/dev/null || true
    ROTOR_CONFIG=bench/rotor.json
fi

if [[ "$ONLY" == all || "$ONLY" == api ]]; then
    if ! command -v wrk >/dev/null 2>&1; then
        echo "ERROR: wrk is missing (Debian package wrk): the api rows would be empty" >&2
        exit 1
    fi
    API="http://127.0.0.1:${ROTOR_PORT}/api"
    KEY=bench-api-key
    PAYLOAD='{"seq":1,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
    PUBLISH="{\"channel\":\"bench\",\"data\":$PAYLOAD}"
    BATCH_FILE="$OUT/batch100.json"
    python3 -c "import json,sys; c={'channel':'bench','data':json.loads(sys.argv[1])}; print(json.dumps({'commands':[{'publish':c}]*100}))" "$PAYLOAD" >"$BATCH_FILE"
    WRK=("${PRIO[@]}" taskset -c 1 wrk -t1 -c64 -d"${API_SECONDS:-10}"s --latency)
    api_row() { # name path env... (path is under $API)
        local name=$1 path=$2
        shift 2
        echo "### $name" | tee -a "$OUT/summary.txt"
        env API_KEY=$KEY "$@" "${WRK[@]}" -s bench/api.lua "$API$path" 2>&1 \
            | tee "$OUT/api-$name.txt" | grep '^ROWAPI' | sed "s/^/ROW $name /" | tee -a "$OUT/summary.txt"
    }
    start_server rotor
    # Every body must be accepted before it is measured.
    curl -sf -H "X-API-Key: $KEY" -d "$PUBLISH" "$API/publish" | grep -q '"result"'
    curl -sf -H "X-API-Key: $KEY" --data-binary @"$BATCH_FILE" "$API/batch" | grep -q '"replies"'
    API="http://127.0.0.1:${ROTOR_PORT}" api_row health /health METHOD=GET
    api_row rpc-noop /rpc BODY='{"method":"noop"}'
    api_row publish /publish BODY="$PUBLISH"
    api_row batch100 /batch BODY_FILE="$BATCH_FILE"
    "${BENCH[@]}" grpc-api --addr "127.0.0.1:10000" --api-key "$KEY" --concurrency 64 \
        --duration "${API_SECONDS:-10}" --server-pid "$SERVER_PID" 2>&1 \
        | tee "$OUT/api-grpc.txt" | tee -a "$OUT/summary.txt"
    stop_server
fi

if [[ "$ONLY" == all || "$ONLY" == delta ]]; then
    # Bytes on the wire with fossil delta vs without (bench/delta.mjs: two
    # official-SDK clients on one channel, a ~2 KB JSON document with a
    # small change per publication). Measures bytes, not time.
    ROTOR_CONFIG=bench/rotor-delta.json
    start_server rotor
    for enc in json protobuf; do
        echo "### delta-$enc" | tee -a "$OUT/summary.txt"
        node bench/delta.mjs "$enc" 200 2>&1 | sed 's/^/ROW delta /' | tee "$OUT/delta-$enc.txt" | tee -a "$OUT/summary.txt"
    done
    stop_server
    ROTOR_CONFIG=bench/rotor.json
fi

echo
echo "Rows (also in $OUT/summary.txt):"
grep -h '^ROW' "$OUT"/*-*.txt | sed 's/^ROW //'
