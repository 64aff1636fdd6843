#!/usr/bin/env bash
# scripts/paired.sh: portcullis and nginx measured at the same time, on one core.
#
# scripts/bench.sh runs the contenders one after the other, so the machine's noise
# (other tenants, CPU steal, frequency) lands on one and not the other: its ratios move
# by +-6% between runs here. This runs nginx (plain reverse proxy) and portcullis (guard
# on, HS256, token cache on, access log off; bench.sh's configs) side by side on
# PAIRED_SERVER_CPU, each loaded by its own wrk on PAIRED_CLIENT_CPU, with the shared
# upstream there too. Both get whatever the core gives at that moment, so the ratios
# (requests served, CPU time per request, p99) hold to about +-1.5% from round to round.
# The scheduler shares the core between the two: a server that needs less CPU per
# request serves more of them.
#
# With PAIRED_AGAINST=path/to/another/portcullis the reference is that binary (same
# config, its own port) instead of nginx: an A/B of two builds, the way each change of
# sessions 8 and 9 was judged (BENCHMARKS.md).
#
# Usage: scripts/paired.sh [-h|--help]
# Env knobs (defaults in brackets):
#   PAIRED_DURATION    seconds per round [6]
#   PAIRED_ROUNDS      rounds; medians are reported [5]
#   PAIRED_CONNS       wrk connections to each server [16]
#   PAIRED_SKIP_BUILD  1: use the existing target/release/portcullis [0]
#   PAIRED_SERVER_CPU / PAIRED_CLIENT_CPU  [0 / 1]
#   PAIRED_PORT_BASE   ports BASE+1..BASE+3 on 127.0.0.1 [18600]
#   PAIRED_AGAINST     nginx, or a portcullis binary to compare the built one with [nginx]
# Needs nginx and wrk (Debian: apt-get install nginx wrk).
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${PAIRED_DURATION:-6}
ROUNDS=${PAIRED_ROUNDS:-5}
CONNS=${PAIRED_CONNS:-16}
SERVER_CPU=${PAIRED_SERVER_CPU:-0}
CLIENT_CPU=${PAIRED_CLIENT_CPU:-1}
BASE=${PAIRED_PORT_BASE:-18600}
UP_PORT=$((BASE + 1)) NGINX_PORT=$((BASE + 2)) PC_PORT=$((BASE + 3))
BIN=$ROOT/target/release/portcullis
SECRET=paired-secret-paired-secret-0123456789abcdef
AGAINST=${PAIRED_AGAINST:-nginx}
if [[ $AGAINST == nginx ]]; then REF=nginx R=ng; else REF=base R=base; fi
[[ $AGAINST == nginx || -x $AGAINST ]] || { echo "paired.sh: PAIRED_AGAINST=$AGAINST is not an executable" >&2; exit 1; }

for tool in nginx wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "paired.sh: $tool is missing (apt-get install nginx wrk)" >&2; exit 1; }
done
WORK=$(mktemp -d)
mkdir -p "$WORK/run" "$WORK/logs" "$WORK/tmp"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ ${PAIRED_SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi

render() { # render TEMPLATE DEST [PORTCULLIS_PORT]: bench.sh's templates, with this script's ports
    sed -e "s#@OUT@#$WORK#g" -e "s#@UPSTREAM_PORT@#$UP_PORT#g" -e "s#@NGINX_PORT@#$NGINX_PORT#g" \
        -e "s#@PORTCULLIS_PORT@#${3:-$PC_PORT}#g" -e "s#@JWT_SECRET@#$SECRET#g" \
        -e "s#@CACHE_ENTRIES@#100000#g" -e "s#@ACCESS_LOG@#false#g" \
        -e "s#@HEADER_READ_TIMEOUT@#10s#g" -e "s#@MAX_CONNECTIONS@#10000#g" "$1" >"$2"
}
render "$ROOT/bench/nginx-upstream.conf" "$WORK/upstream.conf"
render "$ROOT/bench/nginx-proxy.conf" "$WORK/proxy.conf"
render "$ROOT/bench/portcullis.toml" "$WORK/portcullis.toml"
render "$ROOT/bench/portcullis.toml" "$WORK/reference.toml" "$NGINX_PORT"
TOKEN=$("$BIN" token sign --config "$WORK/portcullis.toml" --sub paired --ttl 1h)
printf "wrk.headers['Authorization'] = 'Bearer %s'\n" "$TOKEN" >"$WORK/auth.lua"

start() { # start CPU cmd...: in the background, pinned; its pid in PIDS
    local cpu=$1
    shift
    taskset -c "$cpu" "$@" </dev/null >>"$WORK/logs/processes.log" 2>&1 &
    PIDS+=($!)
}
start "$CLIENT_CPU" nginx -p "$WORK" -c "$WORK/upstream.conf" -g 'daemon off;'
if [[ $AGAINST == nginx ]]; then
    start "$SERVER_CPU" nginx -p "$WORK" -c "$WORK/proxy.conf" -g 'daemon off; master_process off;'
else
    start "$SERVER_CPU" env -u RUST_LOG "$AGAINST" serve --config "$WORK/reference.toml"
fi
REF_PID=${PIDS[-1]}
start "$SERVER_CPU" env -u RUST_LOG "$BIN" serve --config "$WORK/portcullis.toml"
PORTCULLIS=${PIDS[-1]}

URL_REF=http://127.0.0.1:$NGINX_PORT/api/items
URL_PC=http://127.0.0.1:$PC_PORT/api/items
for url in "$URL_REF" "$URL_PC"; do
    for _ in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$url" || true)
        [[ $code == 200 ]] && break
        sleep 0.1
    done
    [[ $code == 200 ]] || { echo "paired.sh: $url did not answer 200 (got $code); see $WORK/logs" >&2; exit 1; }
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL_PC")
[[ $code == 401 ]] || { echo "paired.sh: portcullis let a request without a token through ($code)" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # load SECONDS: both wrks at once; their outputs in $WORK/wrk-{ref,pc}.txt
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$1s" --latency -s "$WORK/auth.lua" "$URL_REF" >"$WORK/wrk-ref.txt" &
    local other=$!
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$1s" --latency -s "$WORK/auth.lua" "$URL_PC" >"$WORK/wrk-pc.txt"
    wait "$other"
}
requests() { grep -oE '^ *[0-9]+ requests' "$1" | grep -oE '[0-9]+'; }
p99_us() { # wrk --latency's 99% line, in microseconds
    awk '$1 == "99%" { v = $2; u = v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v);
        print (u == "us" ? v : u == "ms" ? v * 1000 : v * 1000000) }' "$1"
}
errors() { grep -oE 'Non-2xx or 3xx responses: [0-9]+|Socket errors: .*' "$1" || true; }

load 2 # warm-up: connections, the upstream pools, the token cache
echo "paired: $REF and portcullis on CPU $SERVER_CPU at once; wrk x2 and the upstream on CPU $CLIENT_CPU; $CONNS connections each, $ROUNDS x ${DURATION}s"
printf '%-6s %10s %10s %11s %11s %11s %11s | %11s %11s %11s\n' round "$R req" "pc req" "$R us/req" "pc us/req" "$R p99 us" "pc p99 us" "req pc/$R" "cpu pc/$R" "p99 pc/$R"
RATIOS=$WORK/ratios.txt
for round in $(seq "$ROUNDS"); do
    n0=$(cpu_ticks "$REF_PID") p0=$(cpu_ticks "$PORTCULLIS")
    load "$DURATION"
    n1=$(cpu_ticks "$REF_PID") p1=$(cpu_ticks "$PORTCULLIS")
    for f in "$WORK/wrk-ref.txt" "$WORK/wrk-pc.txt"; do
        e=$(errors "$f")
        [[ -z $e ]] || { echo "paired.sh: errors in round $round ($(basename "$f")): $e" >&2; exit 1; }
    done
    awk -v round="$round" -v nr="$(requests "$WORK/wrk-ref.txt")" -v pr="$(requests "$WORK/wrk-pc.txt")" \
        -v nc=$((n1 - n0)) -v pc=$((p1 - p0)) -v np="$(p99_us "$WORK/wrk-ref.txt")" -v pp="$(p99_us "$WORK/wrk-pc.txt")" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {
            ncpu = nc * 1e6 / hz / nr; pcpu = pc * 1e6 / hz / pr
            printf "%-6s %10d %10d %11.2f %11.2f %11d %11d | %11.3f %11.3f %11.3f\n", round, nr, pr, ncpu, pcpu, np, pp, pr / nr, pcpu / ncpu, pp / np
            printf "%f %f %f\n", pr / nr, pcpu / ncpu, pp / np >> "'"$RATIOS"'"
        }'
done
sort_median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
printf 'median %69s | %11.3f %11.3f %11.3f\n' "" \
    "$(cut -d' ' -f1 "$RATIOS" | sort_median)" "$(cut -d' ' -f2 "$RATIOS" | sort_median)" "$(cut -d' ' -f3 "$RATIOS" | sort_median)"
echo "req pc/$R > 1: portcullis (target/release) served more requests; cpu pc/$R < 1: it used less CPU per request."
