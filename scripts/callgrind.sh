#!/usr/bin/env bash
# scripts/callgrind.sh: CPU instructions per guarded, proxied request (BENCHMARKS.md).
#
# req/s on a shared machine moves by 2x from one hour to the next; the number of
# instructions portcullis executes per request does not. This runs the release binary
# under valgrind's callgrind in front of an nginx upstream (the same guarded HS256
# route as scripts/bench.sh, token cache on, access log off), sends it requests with
# wrk, and prints instructions per request and the functions that cost the most.
# It counts user-space instructions only: the kernel's share (about half of the CPU
# time at this size) is not in it, and a change that saves syscalls does not show.
#
# Usage: scripts/callgrind.sh [-h|--help]
# Env knobs (defaults in brackets):
#   CG_DURATION    seconds of load [8]
#   CG_CONNS       wrk connections [8]
#   CG_TOP         functions listed [25]
#   CG_SKIP_BUILD  1: use the existing target/release/portcullis [0]
#   CG_PORT_BASE   ports BASE+1 (upstream) and BASE+2 (portcullis) [18500]
#   CG_OUT         where callgrind.out and the listings go [target/callgrind]
#   CG_LOCKED      1: also count the atomic (lock-prefixed) instructions per request and
#                  list where they are (scripts/locked-ops.py; needs python3, objdump) [0]
# Needs valgrind, nginx and wrk (Debian: apt-get install valgrind nginx wrk).
# Read the full profile with: callgrind_annotate --inclusive=yes target/callgrind/callgrind.out
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${CG_DURATION:-8}
CONNS=${CG_CONNS:-8}
TOP=${CG_TOP:-25}
BASE=${CG_PORT_BASE:-18500}
OUT=${CG_OUT:-$ROOT/target/callgrind}
UP_PORT=$((BASE + 1))
PC_PORT=$((BASE + 2))
BIN=$ROOT/target/release/portcullis

for tool in valgrind callgrind_annotate callgrind_control nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing (apt-get install valgrind nginx wrk curl)" >&2; exit 1; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ ${CG_SKIP_BUILD:-0} != 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi

cat >"$WORK/upstream.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT; default_type application/json;
    location / { return 200 '{"id":42,"name":"widget","tags":["a","b"],"price":9.5,"stock":true}'; } } }
EOF
SECRET=callgrind-secret-callgrind-secret-0123456789
cat >"$WORK/portcullis.toml" <<EOF
[server]
listen = "127.0.0.1:$PC_PORT"
workers = 1
[log]
level = "warn"
access_log = false
[jwt]
issuer = "portcullis"
audience = "api"
signing_key = "cg"
[[jwt.keys]]
kid = "cg"
algorithm = "HS256"
secret = "$SECRET"
[[routes]]
path = "/api"
upstream = "http://127.0.0.1:$UP_PORT"
strip_prefix = true
auth = "required"
EOF
TOKEN=$("$BIN" token sign --config "$WORK/portcullis.toml" --sub callgrind --ttl 1h)
printf "wrk.headers['Authorization'] = 'Bearer %s'\n" "$TOKEN" >"$WORK/auth.lua"

nginx -c "$WORK/upstream.conf" &
PIDS+=($!)
rm -f "$OUT/callgrind.out"
VG_ARGS=()
if [[ ${CG_LOCKED:-0} == 1 ]]; then
    # A count per instruction address, which locked-ops.py needs.
    VG_ARGS=(--dump-instr=yes --compress-pos=no --compress-strings=no)
fi
valgrind --tool=callgrind "${VG_ARGS[@]}" --callgrind-out-file="$OUT/callgrind.out" \
    "$BIN" serve --config "$WORK/portcullis.toml" >"$OUT/portcullis.log" 2>&1 &
VG=$!
PIDS+=("$VG")

for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PC_PORT/api/items" || true)
    [[ $code == 200 ]] && break
    sleep 0.2
done
[[ $code == 200 ]] || { echo "callgrind.sh: portcullis did not answer 200 (got $code); see $OUT/portcullis.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PC_PORT/api/items")
[[ $code == 401 ]] || { echo "callgrind.sh: a request without a token got $code, not 401" >&2; exit 1; }

# Warm-up (connections, the upstream pool, the token cache, the allocator's pages), then
# the counters are zeroed: start-up (quanta's clock calibration alone is ~10M instructions)
# stays out of the count, so runs of different lengths compare.
wrk -t1 -c"$CONNS" -d1s -s "$WORK/auth.lua" "http://127.0.0.1:$PC_PORT/api/items" >/dev/null
callgrind_control -z "$VG" >/dev/null
wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$WORK/auth.lua" "http://127.0.0.1:$PC_PORT/api/items" >"$OUT/wrk.txt"
kill -INT "$VG"
wait "$VG" 2>/dev/null || true

requests=$(grep -oE '^ *[0-9]+ requests' "$OUT/wrk.txt" | grep -oE '[0-9]+')
non2xx=$(grep -oE 'Non-2xx or 3xx responses: [0-9]+' "$OUT/wrk.txt" | grep -oE '[0-9]+$' || echo 0)
[[ $non2xx == 0 ]] || { echo "callgrind.sh: $non2xx requests were not answered 2xx" >&2; exit 1; }
callgrind_annotate --threshold=100 "$OUT/callgrind.out" >"$OUT/self.txt" 2>/dev/null
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" >"$OUT/inclusive.txt" 2>/dev/null
total=$(grep 'PROGRAM TOTALS' "$OUT/self.txt" | awk '{gsub(",", "", $1); print $1}')

echo "requests:                 $requests (after a 1 s warm-up; start-up not counted, shutdown is)"
echo "instructions per request: $((total / requests))"
echo
echo "instructions per request by function (self cost, top $TOP):"
awk -v n="$requests" -v top="$TOP" '
    /^-+$/ { section++ ; next }
    section >= 4 && /^ *[0-9,]+ / && count < top {
        ir = $1; gsub(",", "", ir)
        name = $0; sub(/^[^%]*%\) +/, "", name); sub(/ \[.*$/, "", name)
        sub(/^.*\.crates\.io-[^\/]*\//, "", name); sub(/^\/rustc\/[^\/]*\/library\//, "std:", name)
        sub(/^.*\/src\//, "src/", name)
        printf "%8d  %s\n", ir / n, substr(name, 1, 150)
        count++
    }' "$OUT/self.txt"
if [[ ${CG_LOCKED:-0} == 1 ]]; then
    echo
    python3 "$ROOT/scripts/locked-ops.py" "$OUT/callgrind.out" "$BIN" "$requests" "$TOP"
fi
echo
echo "full listings: $OUT/self.txt, $OUT/inclusive.txt; profile: $OUT/callgrind.out"
