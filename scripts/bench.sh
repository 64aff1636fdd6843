#!/usr/bin/env bash
# scripts/bench.sh: the side-by-side load benchmark of portcullis (issue 6, BENCHMARKS.md).
#
# Starts on loopback, each limited to one worker thread/process:
#   upstream        nginx answering a small fixed JSON (the limit: wrk hits it directly)
#   nginx           nginx as a plain reverse proxy (no auth)
#   haproxy         HAProxy, jwt_verify HS256 + alg and exp checks, then proxy
#   koa             the seed stack: Koa + koa-jwt + koa-proxies (keep-alive agent), one node process
#   koa-keyobject   (opt-in) the same with the secret passed as a KeyObject (see bench/koa/server.js)
#   portcullis      portcullis, guard on (auth = "required"), token cache on, access log off
# sends them all the same guarded request with the same HS256 token with wrk (1 thread,
# BENCH_CONNS connections) in interleaved rounds, and reports medians. Second part:
# portcullis with ES256 tokens, cache on vs off, and access log on vs off. Third part:
# portcullis's memory with BENCH_IDLE idle keep-alive connections open (bench/idle-client.js).
# Results: bench/out/results.md (also printed), raw numbers in bench/out/raw.tsv.
#
# Usage: scripts/bench.sh [-h|--help]
# Env knobs (defaults in brackets):
#   BENCH_DURATION      seconds per measured wrk run [10]
#   BENCH_WARMUP        seconds of warm-up per contender and connection count [2]
#   BENCH_ROUNDS        interleaved rounds; medians are reported [3]
#   BENCH_CONNS         connection counts, space-separated ["32 256"]
#   BENCH_ONLY          comma list of contenders [upstream,nginx,haproxy,koa,portcullis]
#   BENCH_SKIP_BUILD    1: do not run cargo build --release [0]
#   BENCH_PART2         0: skip the second part (ES256 cache, access log) [1]
#   BENCH_PART2_CONNS   connection count(s) for the second part [256]
#   BENCH_SKIP_ES256    1: skip ES256 cache on/off [0]
#   BENCH_SKIP_ACCESSLOG 1: skip access log on/off [0]
#   BENCH_IDLE          idle keep-alive connections of the third part; 0 skips it [10000]
#   BENCH_PIN           where processes run [split]:
#                       split: the server under test alone on BENCH_SERVER_CPU; wrk, and the
#                         upstream while a proxy is measured, on BENCH_CLIENT_CPU
#                       server: the server under test and the upstream on BENCH_SERVER_CPU,
#                         wrk alone on BENCH_CLIENT_CPU
#                       none: no pinning
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  [0 / 1]
#   BENCH_PORT_BASE     ports BASE+1..BASE+10 on 127.0.0.1 are used [18400]
#   BENCH_PATH          request path below /api [/items]
#   BENCH_ALLOW_NO_AUTH 1: keep portcullis in the run even if it lets unauthenticated
#                       requests through (labelled NO AUTH) [0]
#   BENCH_PORTCULLIS_BIN  [target/release/portcullis]
#   BENCH_PORTCULLIS_ARGS arguments before the config path ["serve --config"]
#   BENCH_PORTCULLIS_TOML template of the HS256 portcullis config [bench/portcullis.toml]
#   BENCH_PORTCULLIS_ES256_TOML template of the ES256 one [bench/portcullis-es256.toml]
#   BENCH_JWT_SECRET    HS256 secret shared by HAProxy, Koa and portcullis (>= 32 bytes)
#   BENCH_RETRIES       a run during which other processes took >= BENCH_NOISY_PCT % of a core
#                       is discarded and redone, up to this many times [2]
#   BENCH_NOISY_PCT     [15]
#   BENCH_WAIT_IDLE     wait up to this many seconds for the machine to be idle (< 10% busy)
#                       before starting; it is shared, and other load makes numbers noisy [0]
#   BENCH_OUT           output directory [bench/out]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/bench
OUT=${BENCH_OUT:-$BENCH_DIR/out}

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-"32 256"}
ONLY=${BENCH_ONLY:-upstream,nginx,haproxy,koa,portcullis}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
PART2=${BENCH_PART2:-1}
PART2_CONNS=${BENCH_PART2_CONNS:-256}
SKIP_ES256=${BENCH_SKIP_ES256:-0}
SKIP_ACCESSLOG=${BENCH_SKIP_ACCESSLOG:-0}
IDLE=${BENCH_IDLE:-10000}
PIN=${BENCH_PIN:-split}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
PORT_BASE=${BENCH_PORT_BASE:-18400}
REQ_PATH=${BENCH_PATH:-/items}
ALLOW_NO_AUTH=${BENCH_ALLOW_NO_AUTH:-0}
WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
RETRIES=${BENCH_RETRIES:-2}
NOISY_PCT=${BENCH_NOISY_PCT:-15}
PORTCULLIS_BIN=${BENCH_PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}
PORTCULLIS_ARGS=${BENCH_PORTCULLIS_ARGS:-serve --config}
PC_TOML=${BENCH_PORTCULLIS_TOML:-$BENCH_DIR/portcullis.toml}
PC_ES_TOML=${BENCH_PORTCULLIS_ES256_TOML:-$BENCH_DIR/portcullis-es256.toml}
JWT_SECRET=${BENCH_JWT_SECRET:-portcullis-bench-hs256-secret-0123456789abcdef}
JWT_ISSUER=portcullis
JWT_AUDIENCE=api

ALL_CONTENDERS=(upstream nginx haproxy koa koa-keyobject portcullis)

# ---------------------------------------------------------------------------------------------
# helpers

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[bench] ERROR: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
  "") ;;
  *) die "unknown argument '$1' (knobs are environment variables: see --help)" ;;
esac

in_range() { # in_range VALUE MIN MAX
  [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3))
}
in_range "$DURATION" 1 300 || die "BENCH_DURATION must be 1..300 seconds"
in_range "$WARMUP" 0 60 || die "BENCH_WARMUP must be 0..60 seconds"
in_range "$ROUNDS" 1 20 || die "BENCH_ROUNDS must be 1..20"
in_range "$PORT_BASE" 1024 65500 || die "BENCH_PORT_BASE must be 1024..65500"
in_range "$WAIT_IDLE" 0 3600 || die "BENCH_WAIT_IDLE must be 0..3600 seconds"
in_range "$RETRIES" 0 10 || die "BENCH_RETRIES must be 0..10"
in_range "$NOISY_PCT" 1 200 || die "BENCH_NOISY_PCT must be 1..200"
in_range "$IDLE" 0 100000 || die "BENCH_IDLE must be 0..100000"
for c in $CONNS $PART2_CONNS; do
  in_range "$c" 1 10000 || die "connection counts must be 1..10000 (got '$c')"
done
((${#JWT_SECRET} >= 32)) || die "BENCH_JWT_SECRET must be at least 32 bytes (HS256)"
[[ $JWT_SECRET =~ ^[A-Za-z0-9._-]+$ ]] || die "BENCH_JWT_SECRET: use [A-Za-z0-9._-] only (it is pasted into config files)"
[[ $REQ_PATH == /* ]] || die "BENCH_PATH must start with /"
case $PIN in
  split) UPSTREAM_CPU=$CLIENT_CPU ;;
  server) UPSTREAM_CPU=$SERVER_CPU ;;
  none) UPSTREAM_CPU= ;;
  *) die "BENCH_PIN must be split, server or none" ;;
esac

declare -A SELECTED=()
IFS=',' read -r -a _only <<<"$ONLY"
for n in "${_only[@]}"; do
  n=${n// /}
  [[ -z $n ]] && continue
  ok=0
  for k in "${ALL_CONTENDERS[@]}"; do [[ $n == "$k" ]] && ok=1; done
  ((ok)) || die "BENCH_ONLY: unknown contender '$n' (known: ${ALL_CONTENDERS[*]})"
  SELECTED[$n]=1
done
((${#SELECTED[@]})) || die "BENCH_ONLY selects nothing"
sel() { [[ -n ${SELECTED[$1]:-} ]]; }
# The order of the tables and of each round.
CONTENDERS=()
for k in "${ALL_CONTENDERS[@]}"; do sel "$k" && CONTENDERS+=("$k"); done

WANT_PORTCULLIS=0
sel portcullis && WANT_PORTCULLIS=1
WANT_NODE=0
{ sel koa || sel koa-keyobject; } && WANT_NODE=1

# ---------------------------------------------------------------------------------------------
# processes: everything started here is killed on exit, even on failure

PIDS=()        # processes we started (nginx masters, haproxy, node, portcullis, wrk)
EXTRA_PIDS=()  # their children we know of (nginx workers)
WRK_PID=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $WRK_PID ]]; then kill -TERM "$WRK_PID" 2>/dev/null || true; fi
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  local i alive
  for ((i = 0; i < 50; i++)); do
    alive=0
    for p in "${PIDS[@]}" "${EXTRA_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${PIDS[@]}" "${EXTRA_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ((rc == 0)) || log "exited with status $rc; logs are in $OUT/logs"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pin_cmd() { # pin_cmd CPU: sets PIN_CMD to the prefix that pins a command (empty if BENCH_PIN=0)
  PIN_CMD=()
  if [[ $PIN != none ]]; then PIN_CMD=(taskset -c "$1"); fi
}

declare -A MAIN_PID=() RSS_PID=() PORT=() URL=() AUTH=() TOKEN_KIND=() LABEL=() LOGFILE=()

start_bg() { # start_bg NAME CPU cmd...
  local name=$1 cpu=$2
  shift 2
  LOGFILE[$name]=$OUT/logs/$name.log
  : >"${LOGFILE[$name]}"
  # A simple command (no function, no subshell) so that $! is the server's own pid
  # (taskset and env exec it). >> (O_APPEND) so that a log file can be truncated between runs.
  pin_cmd "$cpu"
  "${PIN_CMD[@]}" "$@" >>"${LOGFILE[$name]}" 2>&1 &
  MAIN_PID[$name]=$!
  RSS_PID[$name]=$!
  PIDS+=("$!")
}

port_free() {
  if command -v ss >/dev/null; then
    [[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
  fi
}

http_code() { # http_code URL [TOKEN]
  local args=(-s -o /dev/null -m 5 -w '%{http_code}')
  [[ -n ${2:-} ]] && args+=(-H "Authorization: Bearer $2")
  curl "${args[@]}" "$1" || true
}

wait_ready() { # wait_ready NAME: any HTTP answer on the bench URL; 0 ok, 1 not (process died or timeout)
  local name=$1 i code
  for ((i = 0; i < 200; i++)); do # 200 x 0.1 s = 20 s at most
    if ! kill -0 "${MAIN_PID[$name]}" 2>/dev/null; then
      log "$name exited during start-up; last lines of ${LOGFILE[$name]}:"
      tail -n 15 "${LOGFILE[$name]}" >&2 || true
      return 1
    fi
    code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "${URL[$name]}" || true)
    [[ $code != 000 ]] && return 0
    sleep 0.1
  done
  log "$name did not answer on ${URL[$name]} within 20 s; last lines of ${LOGFILE[$name]}:"
  tail -n 15 "${LOGFILE[$name]}" >&2 || true
  return 1
}

render() { # render TEMPLATE DEST: replaces @OUT@ @UPSTREAM_PORT@ ... in a bench/ template
  sed -e "s#@OUT@#$OUT#g" \
    -e "s#@UPSTREAM_PORT@#${PORT[upstream]}#g" \
    -e "s#@NGINX_PORT@#${PORT[nginx]}#g" \
    -e "s#@HAPROXY_PORT@#${PORT[haproxy]}#g" \
    -e "s#@JWT_SECRET@#$JWT_SECRET#g" \
    -e "s#@PORTCULLIS_PORT@#${R_PORT:-0}#g" \
    -e "s#@CACHE_ENTRIES@#${R_CACHE:-100000}#g" \
    -e "s#@ACCESS_LOG@#${R_ACCESS_LOG:-false}#g" \
    -e "s#@HEADER_READ_TIMEOUT@#${R_HEADER_READ_TIMEOUT:-10s}#g" \
    -e "s#@MAX_CONNECTIONS@#${R_MAX_CONNECTIONS:-10000}#g" \
    -e "s#@ES256_PUBLIC_KEY@#$OUT/keys/es256-public.pem#g" \
    "$1" >"$2"
  if grep -q '@[A-Z0-9_]*@' "$2"; then die "unreplaced placeholder in $2"; fi
}

cpu_ticks() { # "busy total" for CPU $1 (or all CPUs with "")
  awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}
task_ticks() { # "busy total" of all CPUs, busy = user+nice+system+steal (time charged to tasks,
  # or taken by the hypervisor); irq and softirq are left out: our own traffic causes them.
  awk '$1 == "cpu" { b = $2 + $3 + $4 + $9; print b, b + $5 + $6 + $7 + $8 }' /proc/stat
}
proc_ticks() { # utime+stime of a process (all its threads), in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
busy_pct() { # busy_pct "B0 T0" "B1 T1"
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# ---------------------------------------------------------------------------------------------
# 1. install what is missing, build portcullis

SUDO=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null; then SUDO=(sudo); fi
fi

apt_install() {
  log "installing with apt-get: $*"
  ((EUID == 0)) || ((${#SUDO[@]})) || die "need root (or sudo) to install: $*"
  # Debian starts services on install; do not let the packaged nginx/haproxy start (they
  # would listen on :80 on all interfaces). policy-rc.d is only created if absent.
  local prc=/usr/sbin/policy-rc.d created=0 rc=0
  if [[ ! -e $prc ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$prc" >/dev/null && "${SUDO[@]}" chmod +x "$prc" && created=1
  fi
  "${SUDO[@]}" apt-get update -qq || rc=$?
  if ((rc == 0)); then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" || rc=$?
  fi
  ((created)) && "${SUDO[@]}" rm -f "$prc"
  ((rc == 0)) || die "apt-get install $* failed"
}

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v taskset >/dev/null || missing+=(util-linux)
sel haproxy && ! command -v haproxy >/dev/null && missing+=(haproxy)
command -v node >/dev/null || missing+=(nodejs)
((WANT_NODE)) && ! command -v npm >/dev/null && missing+=(npm)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "node >= 18 is needed (have $(node --version))"

if sel haproxy; then
  hv=$(haproxy -v 2>/dev/null | sed -n 's/^HA-\{0,1\}Proxy version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n1)
  read -r hmaj hmin <<<"${hv:-0 0}"
  ((hmaj > 2 || (hmaj == 2 && hmin >= 5))) || die "HAProxy >= 2.5 is needed for jwt_verify (have ${hmaj}.${hmin})"
fi

rm -rf "${OUT:?}/wrk" "${OUT:?}/conf" "${OUT:?}/keys"
mkdir -p "$OUT"/{logs,run,tmp,keys,wrk,conf}

if ((WANT_NODE)); then
  stamp=$BENCH_DIR/koa/node_modules/.bench-lock-sha256
  want=$(sha256sum "$BENCH_DIR/koa/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "npm ci in bench/koa"
    (cd "$BENCH_DIR/koa" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in bench/koa"
    echo "$want" >"$stamp"
  fi
fi

if ((WANT_PORTCULLIS)); then
  if [[ $SKIP_BUILD != 1 ]]; then
    command -v cargo >/dev/null || die "cargo is not installed (or set BENCH_SKIP_BUILD=1 and BENCH_PORTCULLIS_BIN)"
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --bin portcullis) ||
      die "portcullis does not build; run the others with BENCH_ONLY=upstream,nginx,haproxy,koa"
  fi
  [[ -x $PORTCULLIS_BIN ]] || die "no portcullis binary at $PORTCULLIS_BIN"
fi

# ---------------------------------------------------------------------------------------------
# 2. ports, tokens, configs, processes

PORT[upstream]=$((PORT_BASE + 1))
PORT[nginx]=$((PORT_BASE + 2))
PORT[haproxy]=$((PORT_BASE + 3))
PORT[koa]=$((PORT_BASE + 4))
PORT[koa-keyobject]=$((PORT_BASE + 5))
PORT[portcullis]=$((PORT_BASE + 6))
PORT[pc-es256-cache]=$((PORT_BASE + 7))
PORT[pc-es256-nocache]=$((PORT_BASE + 8))
PORT[pc-accesslog]=$((PORT_BASE + 9))
PORT[pc-idle]=$((PORT_BASE + 10))
for p in "${PORT[@]}"; do
  port_free "$p" || die "port $p on 127.0.0.1 is in use (choose another BENCH_PORT_BASE)"
done

URL[upstream]=http://127.0.0.1:${PORT[upstream]}$REQ_PATH
for n in nginx haproxy koa koa-keyobject portcullis pc-es256-cache pc-es256-nocache pc-accesslog pc-idle; do
  URL[$n]=http://127.0.0.1:${PORT[$n]}/api$REQ_PATH
done
LABEL=([upstream]="upstream (nginx, direct)" [nginx]="nginx proxy (no auth)" [haproxy]="HAProxy + jwt_verify"
  [koa]="Koa + koa-jwt + koa-proxies" [koa-keyobject]="Koa (secret as KeyObject)" [portcullis]="portcullis"
  [pc-es256-cache]="portcullis ES256, cache on" [pc-es256-nocache]="portcullis ES256, cache off (max_entries = 0)"
  [pc-accesslog]="portcullis HS256, access log on" [pc-nolog]="portcullis HS256, access log off"
  [pc-idle]="portcullis HS256, idle connections")
AUTH=([upstream]=0 [nginx]=0 [haproxy]=1 [koa]=1 [koa-keyobject]=1 [portcullis]=1 [pc-es256-cache]=1 [pc-es256-nocache]=1 [pc-accesslog]=1 [pc-idle]=1)

# Tokens: every contender gets the very same token. Lifetime covers the whole run.
MINT=(node "$BENCH_DIR/mint-token.js")
TTL=$((7200 + 2 * ROUNDS * 10 * (DURATION + WARMUP)))
TOKEN_HS=$("${MINT[@]}" --alg HS256 --secret "$JWT_SECRET" --ttl "$TTL")
BAD_HS=$("${MINT[@]}" --alg HS256 --secret "not-the-bench-secret-not-the-bench-secret")
EXPIRED_HS=$("${MINT[@]}" --alg HS256 --secret "$JWT_SECRET" --exp-offset -120)
TOKEN_NONE=$("${MINT[@]}" --alg none)
# tampered TOKEN OTHER: OTHER's header and payload (another sub) with TOKEN's signature.
tampered() { echo "${2%.*}.${1##*.}"; }
TAMPERED_HS=$(tampered "$TOKEN_HS" "$("${MINT[@]}" --alg HS256 --secret "$JWT_SECRET" --sub admin --ttl "$TTL")")
echo "$TOKEN_HS" >"$OUT/token-hs256.jwt"

UPSTREAM_BODY=

start_all() {
  # upstream: lives on UPSTREAM_CPU while proxies are measured; moved to the server CPU
  # when it is measured directly.
  render "$BENCH_DIR/nginx-upstream.conf" "$OUT/conf/nginx-upstream.conf"
  start_bg upstream "${UPSTREAM_CPU:-0}" nginx -p "$OUT" -e "$OUT/logs/nginx-upstream.error.log" -c "$OUT/conf/nginx-upstream.conf" -g 'daemon off;'
  if sel nginx; then
    render "$BENCH_DIR/nginx-proxy.conf" "$OUT/conf/nginx-proxy.conf"
    start_bg nginx "$SERVER_CPU" nginx -p "$OUT" -e "$OUT/logs/nginx-proxy.error.log" -c "$OUT/conf/nginx-proxy.conf" -g 'daemon off;'
  fi
  if sel haproxy; then
    render "$BENCH_DIR/haproxy.cfg" "$OUT/conf/haproxy.cfg"
    haproxy -c -q -f "$OUT/conf/haproxy.cfg" || die "haproxy rejects $OUT/conf/haproxy.cfg"
    start_bg haproxy "$SERVER_CPU" haproxy -db -f "$OUT/conf/haproxy.cfg"
  fi
  local mode
  for n in koa koa-keyobject; do
    sel "$n" || continue
    mode=string
    [[ $n == koa-keyobject ]] && mode=keyobject
    start_bg "$n" "$SERVER_CPU" env BENCH_KOA_PORT="${PORT[$n]}" BENCH_UPSTREAM_PORT="${PORT[upstream]}" \
      BENCH_JWT_SECRET="$JWT_SECRET" BENCH_JWT_ISSUER="$JWT_ISSUER" BENCH_JWT_AUDIENCE="$JWT_AUDIENCE" \
      BENCH_KOA_SECRET_MODE="$mode" NODE_ENV=production node "$BENCH_DIR/koa/server.js"
  done
  if ((WANT_PORTCULLIS)); then
    start_portcullis portcullis "$PC_TOML" 100000 false
  fi

  for n in upstream "${CONTENDERS[@]}"; do
    [[ -n ${MAIN_PID[$n]:-} ]] || continue
    wait_ready "$n" || die "$n did not start"
  done
  # nginx: the worker does the work; measure its RSS, and remember it for clean-up.
  local w
  for n in upstream nginx; do
    [[ -n ${MAIN_PID[$n]:-} ]] || continue
    w=$(pgrep -P "${MAIN_PID[$n]}" | head -n1 || true)
    if [[ -n $w ]]; then
      RSS_PID[$n]=$w
      EXTRA_PIDS+=("$w")
    fi
  done
}

start_portcullis() { # start_portcullis NAME TEMPLATE CACHE_ENTRIES ACCESS_LOG
  local name=$1
  R_PORT=${PORT[$name]} R_CACHE=$3 R_ACCESS_LOG=$4 render "$2" "$OUT/conf/$name.toml"
  # shellcheck disable=SC2086 # PORTCULLIS_ARGS is a word list by design
  start_bg "$name" "$SERVER_CPU" env -u RUST_LOG PORTCULLIS_CONFIG="$OUT/conf/$name.toml" \
    "$PORTCULLIS_BIN" $PORTCULLIS_ARGS "$OUT/conf/$name.toml"
}

# sanity NAME KIND: 200 + the upstream's body with the token; for guarded contenders 401/403
# without a token, with a bad signature (other key), a tampered payload (signature of the
# bench token), an expired token and alg "none". Prints the failures.
sanity() {
  local name=$1 kind=$2 url=${URL[$1]} tok bad exp tam body code fails=()
  if [[ $kind == es ]]; then
    tok=$TOKEN_ES bad=$BAD_ES exp=$EXPIRED_ES tam=$TAMPERED_ES
  else
    tok=$TOKEN_HS bad=$BAD_HS exp=$EXPIRED_HS tam=$TAMPERED_HS
  fi
  body=$(curl -s -m 5 -H "Authorization: Bearer $tok" -w '\n%{http_code}' "$url" || true)
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  while [[ $body == *$'\n' ]]; do body=${body%$'\n'}; done
  [[ $code == 200 ]] || fails+=("valid token -> $code (want 200)")
  [[ $code != 200 || $body == "$UPSTREAM_BODY" ]] || fails+=("valid token -> body differs from the upstream's: ${body:0:120}")
  if [[ ${AUTH[$name]} == 1 ]]; then
    local what t
    for what in none bad_signature tampered_payload expired alg_none; do
      case $what in
        none) t= ;;
        bad_signature) t=$bad ;;
        tampered_payload) t=$tam ;;
        expired) t=$exp ;;
        alg_none) t=$TOKEN_NONE ;;
      esac
      code=$(http_code "$url" "$t")
      [[ $code == 401 || $code == 403 ]] || fails+=("$what token -> $code (want 401/403)")
    done
  fi
  ((${#fails[@]} == 0)) && return 0
  printf '%s\n' "${fails[@]}"
  return 1
}

# check NAME KIND: sanity, except that with BENCH_ALLOW_NO_AUTH=1 a portcullis that answers
# 200 to the valid token but does not enforce the guard is kept (labelled, with a note).
check() {
  local name=$1 out
  if out=$(sanity "$1" "$2"); then return 0; fi
  if [[ $ALLOW_NO_AUTH == 1 && ($name == portcullis || $name == pc-*) && $out != *"valid token"* ]]; then
    LABEL[$name]="${LABEL[$name]} (NO AUTH: guard not enforced)"
    NOTES+=("$name failed the auth checks and ran anyway (BENCH_ALLOW_NO_AUTH=1): $(paste -sd ';' - <<<"$out")")
    log "WARNING: $name does not enforce the guard; kept because BENCH_ALLOW_NO_AUTH=1"
    return 0
  fi
  CHECK_FAILURES=$(paste -sd ';' - <<<"$out")
  printf '  %s\n' "$out" >&2
  return 1
}

# ---------------------------------------------------------------------------------------------
# 3. measuring

RAW=$OUT/raw.tsv
printf 'part\tconns\tround\tname\trps\tp50_us\tp90_us\tp99_us\terrors\trss_kib\tcpu_server\tcpu_client_core\tcpu_wrk\tcpu_other\trequests\tlog_bytes\tattempts\n' >"$RAW"
RETRY_BUDGET=$((RETRIES > 0 ? 2 * ${#CONTENDERS[@]} : 0)) # bounds the extra time: 2 redos per contender on average
RETRIED=0

token_for() { [[ ${TOKEN_KIND[$1]:-hs} == es ]] && echo "$TOKEN_ES" || echo "$TOKEN_HS"; }

# The server under test always has the server CPU and wrk the client CPU; the upstream lives
# on UPSTREAM_CPU while a proxy is measured, and moves to the server CPU when it is measured.
place_upstream() { # place_upstream CPU
  [[ $PIN != none ]] || return 0
  taskset -a -cp "$1" "${RSS_PID[upstream]}" >/dev/null
}

run_wrk() { # run_wrk NAME CONNS SECONDS OUTFILE
  local name=$1
  pin_cmd "$CLIENT_CPU"
  "${PIN_CMD[@]}" env BENCH_TOKEN="$(token_for "$name")" \
    timeout -k 5 $(($3 + 30)) wrk -t1 -c"$2" -d"$3"s --timeout 5s --latency \
    -s "$BENCH_DIR/wrk.lua" "${URL[$name]}" >"$4" 2>&1 &
  WRK_PID=$!
  local rc=0
  wait "$WRK_PID" || rc=$?
  WRK_PID=
  return "$rc"
}

warm_up() { # warm_up NAME CONNS
  ((WARMUP > 0)) || return 0
  [[ $1 == upstream ]] && place_upstream "$SERVER_CPU"
  run_wrk "$1" "$2" "$WARMUP" "$OUT/wrk/warmup-$1-c$2.txt" || true
  [[ $1 == upstream ]] && place_upstream "$UPSTREAM_CPU"
  return 0
}

# CPU seconds of this shell's reaped children so far (wrk, through timeout). `times` must run
# in this shell, not in a $(...) subshell, hence the file.
# Sets CHILD_SECS.
children_secs() {
  times >"$OUT/run/times.txt"
  CHILD_SECS=$(awk 'NR == 2 { s = 0; for (i = 1; i <= NF; i++) { m = $i; sub(/s$/, "", m); split(m, x, "m"); s += x[1] * 60 + x[2] }; printf "%.3f", s }' "$OUT/run/times.txt")
}

measure() { # measure PART CONNS ROUND NAME
  local part=$1 c=$2 r=$3 name=$4 pid=${RSS_PID[$4]} upid=${RSS_PID[upstream]}
  local f=$OUT/wrk/$part-$name-c$c-r$r.txt
  local attempt=1 p0 u0 a0 w0 t0 p1 u1 a1 w1 t1 c0 c1 rss logb line kv errors cs cc cw co
  local -A v=()
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 5 "${LOGFILE[$name]}" "$OUT/logs/nginx-$name.error.log" 2>/dev/null >&2 || true
      die "$name (pid $pid) is gone; see $OUT/logs/"
    fi
    [[ $name == upstream ]] && place_upstream "$SERVER_CPU"
    [[ $name == pc-accesslog ]] && : >"${LOGFILE[$name]}"
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true # reset VmHWM: peak of this run only
    p0=$(proc_ticks "$pid")
    u0=$(proc_ticks "$upid")
    a0=$(task_ticks)
    c0=$(cpu_ticks "$CLIENT_CPU")
    children_secs
    w0=$CHILD_SECS
    t0=$(date +%s%N)
    run_wrk "$name" "$c" "$DURATION" "$f" || die "wrk failed against $name; see $f"
    t1=$(date +%s%N)
    p1=$(proc_ticks "$pid")
    u1=$(proc_ticks "$upid")
    a1=$(task_ticks)
    c1=$(cpu_ticks "$CLIENT_CPU")
    children_secs
    w1=$CHILD_SECS
    [[ $name == upstream ]] && place_upstream "$UPSTREAM_CPU"
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    logb=0
    if [[ $name == pc-accesslog ]]; then
      logb=$(stat -c %s "${LOGFILE[$name]}")
      : >"${LOGFILE[$name]}"
    fi
    line=$(grep '^RESULT ' "$f" | tail -n1) || die "no RESULT line from wrk against $name; see $f"
    # RESULT requests=.. duration_us=.. rps=.. p50_us=.. p90_us=.. p99_us=.. max_us=..
    #        status_errors=.. connect_errors=.. read_errors=.. write_errors=.. timeouts=..
    v=()
    for kv in ${line#RESULT }; do v[${kv%%=*}]=${kv#*=}; done
    errors=$((v[status_errors] + v[connect_errors] + v[read_errors] + v[write_errors] + v[timeouts]))
    # CPU, in % of one core over the run: the server process, the client CPU's busy time, wrk,
    # and "other": everything busy on the machine that is neither the server, nor wrk, nor
    # the upstream (other sessions' builds and tests): a measure of noise.
    read -r cs _ cw co < <(awk -v p=$((p1 - p0)) -v u=$((u1 - u0)) -v w0="$w0" -v w1="$w1" \
      -v a0="$a0" -v a1="$a1" -v hz="$CLK_TCK" -v ns=$((t1 - t0)) -v ncpu="$(nproc)" -v same="$([[ $name == upstream ]] && echo 1 || echo 0)" '
      BEGIN {
        wall = ns / 1e9; if (wall <= 0) wall = 1
        split(a0, x, " "); split(a1, y, " ")
        all = (y[2] > x[2]) ? ncpu * 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0
        srv = 100 * p / hz / wall; up = same ? 0 : 100 * u / hz / wall; wrk = 100 * (w1 - w0) / wall
        oth = all - srv - up - wrk; if (oth < 0) oth = 0
        printf "%.0f %.0f %.0f %.0f\n", srv, up, wrk, oth
      }')
    cc=$(busy_pct "$c0" "$c1")
    if ((co >= NOISY_PCT && attempt <= RETRIES && RETRY_BUDGET > 0)); then
      log "$(printf '%-5s c=%-4s round %s/%s %-18s other load took %s%% of a core: run discarded, retrying' \
        "$part" "$c" "$r" "$ROUNDS" "$name" "$co")"
      attempt=$((attempt + 1))
      RETRY_BUDGET=$((RETRY_BUDGET - 1))
      RETRIED=$((RETRIED + 1))
      sleep 1
      continue
    fi
    break
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$c" "$r" "$name" "${v[rps]}" \
    "${v[p50_us]}" "${v[p90_us]}" "${v[p99_us]}" "$errors" "$rss" "$cs" "$cc" "$cw" "$co" "${v[requests]}" "$logb" "$attempt" >>"$RAW"
  log "$(printf '%-5s c=%-4s round %s/%s %-18s %9.0f req/s  p50 %6s us  p99 %7s us  errors %s  peak RSS %s KiB  cpu srv %s%% wrk %s%% client-core %s%% other %s%%' \
    "$part" "$c" "$r" "$ROUNDS" "$name" "${v[rps]}" "${v[p50_us]}" "${v[p99_us]}" "$errors" "$rss" "$cs" "$cw" "$cc" "$co")"
}

run_part() { # run_part PART "CONNS..." NAME...: interleaved rounds, order rotated each round
  local part=$1 conns=$2
  shift 2
  local names=("$@") c r i k n=$#
  for c in $conns; do
    for k in "${names[@]}"; do warm_up "$k" "$c"; done
    for ((r = 1; r <= ROUNDS; r++)); do
      for ((i = 0; i < n; i++)); do
        k=${names[$(((i + r - 1) % n))]}
        measure "$part" "$c" "$r" "$k"
      done
    done
  done
}

# ---------------------------------------------------------------------------------------------
# go

n_conns=$(wc -w <<<"$CONNS")
n_p2conns=$(wc -w <<<"$PART2_CONNS")
est=$((n_conns * ${#CONTENDERS[@]} * (WARMUP + ROUNDS * DURATION)))
if ((WANT_PORTCULLIS)) && [[ $PART2 != 0 ]]; then est=$((est + n_p2conns * 4 * (WARMUP + ROUNDS * DURATION))); fi
if ((WANT_PORTCULLIS && IDLE > 0)); then est=$((est + 10 + IDLE / 500)); fi
log "output: $OUT; measuring will take about $((est / 60)) min $((est % 60)) s"
machine_busy() { # % busy of the whole machine over 2 s
  local a b
  a=$(cpu_ticks "")
  sleep 2
  b=$(cpu_ticks "")
  busy_pct "$a" "$b"
}
MACHINE_BUSY=$(machine_busy)
waited=0
while ((MACHINE_BUSY > 10 && waited < WAIT_IDLE)); do
  ((waited == 0)) && log "the machine is ${MACHINE_BUSY}% busy; waiting up to ${WAIT_IDLE} s for it to be idle"
  MACHINE_BUSY=$(machine_busy)
  waited=$((waited + 2))
done
if ((MACHINE_BUSY > 10)); then
  log "WARNING: the machine is already ${MACHINE_BUSY}% busy before the benchmark; numbers will be noisy"
fi

start_all
UPSTREAM_BODY=$(curl -s -m 5 "${URL[upstream]}")
[[ $UPSTREAM_BODY == *'"ok":true'* ]] || die "the upstream answers an unexpected body: $UPSTREAM_BODY"

NOTES=()
CHECK_FAILURES=
for n in "${CONTENDERS[@]}"; do
  check "$n" hs || die "sanity check failed for $n (${URL[$n]})"
  log "sanity ok: $n"
done

MAIN_START=$(date +%s)
run_part main "$CONNS" "${CONTENDERS[@]}"
MAIN_SECS=$(($(date +%s) - MAIN_START))

# --- second part ---
PART2_NAMES=()
if ((WANT_PORTCULLIS)) && [[ $PART2 != 0 ]]; then
  if [[ $SKIP_ES256 != 1 ]]; then
    # ES256 key pair (openssl) and tokens (node's crypto); another key for a bad signature.
    openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
      openssl pkcs8 -topk8 -nocrypt -out "$OUT/keys/es256-private.pem"
    openssl ec -in "$OUT/keys/es256-private.pem" -pubout -out "$OUT/keys/es256-public.pem" 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
      openssl pkcs8 -topk8 -nocrypt -out "$OUT/keys/es256-other.pem"
    TOKEN_ES=$("${MINT[@]}" --alg ES256 --key "$OUT/keys/es256-private.pem" --ttl "$TTL")
    BAD_ES=$("${MINT[@]}" --alg ES256 --key "$OUT/keys/es256-other.pem")
    EXPIRED_ES=$("${MINT[@]}" --alg ES256 --key "$OUT/keys/es256-private.pem" --exp-offset -120)
    TAMPERED_ES=$(tampered "$TOKEN_ES" "$("${MINT[@]}" --alg ES256 --key "$OUT/keys/es256-private.pem" --sub admin)")
    echo "$TOKEN_ES" >"$OUT/token-es256.jwt"
    TOKEN_KIND[pc-es256-cache]=es
    TOKEN_KIND[pc-es256-nocache]=es
    start_portcullis pc-es256-cache "$PC_ES_TOML" 100000 false
    start_portcullis pc-es256-nocache "$PC_ES_TOML" 0 false
    es_ok=1
    for n in pc-es256-cache pc-es256-nocache; do
      if ! wait_ready "$n"; then
        es_ok=0
        NOTES+=("ES256 part skipped: $n did not start (ES256 keys or cache.max_entries = 0 not supported yet?): $(tail -n 3 "${LOGFILE[$n]}" | paste -sd ' ' -)")
      elif ! check "$n" es; then
        es_ok=0
        NOTES+=("ES256 part skipped: $n failed its checks: $CHECK_FAILURES")
      fi
    done
    if ((es_ok)); then
      PART2_NAMES+=(pc-es256-cache pc-es256-nocache)
    else
      log "WARNING: skipping the ES256 part (see results.md notes)"
      for n in pc-es256-cache pc-es256-nocache; do kill -TERM "${MAIN_PID[$n]}" 2>/dev/null || true; done
    fi
  fi
  if [[ $SKIP_ACCESSLOG != 1 ]]; then
    start_portcullis pc-accesslog "$PC_TOML" 100000 true
    CHECK_FAILURES="did not start: $(tail -n 3 "${LOGFILE[pc-accesslog]}" | paste -sd ' ' -)"
    if wait_ready pc-accesslog && check pc-accesslog hs; then
      if [[ ! -s ${LOGFILE[pc-accesslog]} ]]; then
        NOTES+=("pc-accesslog wrote nothing during its sanity requests: is [log] access_log = true honoured?")
      fi
      # The headline process (log off) is re-measured alongside, in the same rounds.
      PART2_NAMES+=(portcullis pc-accesslog)
    else
      NOTES+=("access-log part skipped: pc-accesslog did not pass its checks: $CHECK_FAILURES")
    fi
  fi
  ((${#PART2_NAMES[@]})) && run_part part2 "$PART2_CONNS" "${PART2_NAMES[@]}"
elif [[ $PART2 != 0 ]]; then
  NOTES+=("second part (ES256 cache, access log) not run: portcullis is not in BENCH_ONLY")
fi

# --- third part: memory with BENCH_IDLE idle keep-alive connections ---
# A fresh portcullis (no load before) with room for them: header_read_timeout, which also
# closes idle keep-alive connections, is raised to 300 s and max_connections above IDLE.
# bench/idle-client.js opens them in batches of 500, one guarded request on each, and keeps
# them open and silent; VmRSS is read once all are open and the process has settled.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
IDLE_RESULT=
if ((WANT_PORTCULLIS && IDLE > 0)); then
  need=$((IDLE + 1024))
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < need)); then
    NOTES+=("third part skipped: $IDLE idle connections need $need open files, the hard limit is $hard")
  else
    ulimit -n "$need"
    R_HEADER_READ_TIMEOUT=300s R_MAX_CONNECTIONS=$((IDLE + 100)) start_portcullis pc-idle "$PC_TOML" 100000 false
    if wait_ready pc-idle && check pc-idle hs; then
      pid=${MAIN_PID[pc-idle]}
      sleep 1
      idle_base=$(status_kib "$pid" VmRSS)
      idle_out=$OUT/logs/idle-client.out
      : >"$idle_out"
      # The client holds its connections until it is killed.
      pin_cmd "$CLIENT_CPU"
      "${PIN_CMD[@]}" node "$BENCH_DIR/idle-client.js" 127.0.0.1 "${PORT[pc-idle]}" "$IDLE" "/api$REQ_PATH" "$TOKEN_HS" >"$idle_out" 2>&1 </dev/null &
      idle_client=$!
      PIDS+=("$idle_client")
      for ((i = 0; i < 1200; i++)); do # 120 s at most
        [[ -s $idle_out ]] && break
        kill -0 "$idle_client" 2>/dev/null || break
        sleep 0.1
      done
      sleep 2
      idle_fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
      idle_rss=$(status_kib "$pid" VmRSS)
      idle_hwm=$(status_kib "$pid" VmHWM)
      idle_line=$(head -n1 "$idle_out")
      kill -TERM "$idle_client" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
      opened=$(sed -n 's/.*"opened":\([0-9]*\).*/\1/p' <<<"$idle_line")
      idle_ok=$(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' <<<"$idle_line")
      if [[ -n $opened ]]; then
        IDLE_RESULT="$opened $idle_ok $idle_base $idle_rss $idle_hwm $idle_fds"
        first_error=$(sed -n 's/.*"first_error":"\([^"]*\)".*/\1/p' <<<"$idle_line")
        [[ -n $first_error ]] && NOTES+=("third part: $((IDLE - opened)) connection(s) failed; first error: $first_error")
      else
        NOTES+=("third part: the idle client did not report: $(tail -n 3 "$idle_out" | paste -sd ' ' -)")
      fi
    else
      NOTES+=("third part skipped: pc-idle did not pass its checks: $CHECK_FAILURES")
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------
# 4. results

# medians NAME PART CONNS -> "rps p50 p99 errors_total rss_max cpu_srv cpu_client_core log_bytes_per_req cpu_wrk cpu_other
#                              cpu_us_per_request" (empty if no data). The last is the server's
# CPU time per request (median over runs): a stall of the shared machine lowers req/s but
# not the work each request costs, so this ratio moves far less from run to run.
medians() {
  awk -F'\t' -v n="$1" -v p="$2" -v c="$3" '
    function med(a, k,    i, j, t) {
      for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    NR > 1 && $1 == p && $2 == c && $4 == n {
      k++; rps[k] = $5; p50[k] = $6; p99[k] = $8; err += $9; if ($10 > rss) rss = $10
      cs[k] = $11; cc[k] = $12; cw[k] = $13; co[k] = $14; if ($15 > 0) lb[k] = $16 / $15; else lb[k] = 0
      cpr[k] = ($5 > 0) ? $11 * 10000 / $5 : 0
    }
    END {
      if (k) printf "%.1f %d %d %d %d %d %d %.1f %d %d %.1f\n", med(rps, k), med(p50, k), med(p99, k), err, rss, med(cs, k), med(cc, k), med(lb, k), med(cw, k), med(co, k), med(cpr, k)
    }' "$RAW"
}
fmt_us() { awk -v u="$1" 'BEGIN { if (u < 1000) printf "%d µs", u; else printf "%.2f ms", u / 1000 }'; }
fmt_rps() { awk -v r="$1" 'BEGIN { printf "%.0f", r }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "n/a" }'; }
CLIENT_BOUND=0
NOISY=0
quality() { # quality SERVER% CLIENT_CORE% OTHER%: sets MARK for a row to read with care
  MARK=
  if (($3 >= NOISY_PCT)); then
    NOISY=1
    MARK=" (noisy)"
  elif (($1 < 90 && $2 >= 95)); then
    CLIENT_BOUND=1
    MARK=" (client-bound)"
  fi
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

versions() {
  local v h w
  v=$(nginx -v 2>&1 || true)
  h=$(haproxy -v 2>/dev/null || true)
  w=$(wrk --version 2>&1 || true)
  printf '%s, HAProxy %s, node %s, wrk %s' "${v##*version: }" "$(awk 'NR == 1 { print $3 }' <<<"$h")" \
    "$(node --version)" "$(awk 'NR == 1 { print $2 }' <<<"$w")"
  if ((WANT_NODE)); then
    printf ', %s' "$(cd "$BENCH_DIR/koa" && node -p '["koa", "koa-jwt", "jsonwebtoken", "koa-proxies"].map(m => m + " " + require(m + "/package.json").version).join(", ")')"
  fi
}

RESULTS=$OUT/results.md
{
  echo "# portcullis side-by-side benchmark"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(nproc) CPUs, $(uname -sr)"
  echo "- portcullis: $(if ((WANT_PORTCULLIS)); then echo "$PORTCULLIS_BIN ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit'))"; else echo "not in this run"; fi)"
  echo "- Versions: $(versions)"
  echo "- wrk: 1 thread, $DURATION s per run after a $WARMUP s warm-up per contender, $ROUNDS interleaved round(s), medians shown; GET /api$REQ_PATH with the same HS256 bearer token for everyone (the upstream row: GET $REQ_PATH directly)"
  case $PIN in
    split) echo "- Pinning (split): the server under test alone on CPU $SERVER_CPU; wrk on CPU $CLIENT_CPU, with the upstream while a proxy is measured (the upstream moves to CPU $SERVER_CPU when measured directly)" ;;
    server) echo "- Pinning (server): the server under test and the upstream on CPU $SERVER_CPU; wrk alone on CPU $CLIENT_CPU" ;;
    none) echo "- Pinning: none" ;;
  esac
  echo "- Machine busy before the run: ${MACHINE_BUSY}%$( ((MACHINE_BUSY > 10)) && echo ' (WARNING: other load; numbers are noisy)')"
  echo "- Errors: non-2xx/3xx responses plus socket errors and timeouts, summed over all rounds. CPU srv · wrk · other: median CPU use, in % of one core, of the server process, of wrk, and of everything else on the machine except the upstream (other load: noise; a run with other ≥ $NOISY_PCT% is redone up to $RETRIES times, $RETRIED run(s) were redone). Peak RSS: VmHWM of the server process (nginx: its worker), reset before each run, max over rounds. CPU per request: the server process's CPU time (user + system) per answered request, median over rounds; a stall of this shared machine lowers req/s in a round but not what each request costs, so the ratio of these moves much less between runs than the ratio of req/s."
  echo
  echo "## Headline: guarded request, HS256, one worker each"
  for c in $CONNS; do
    echo
    echo "### $c connections"
    echo
    head="| contender | req/s | p50 | p99 | errors | peak RSS | CPU srv · wrk · other | CPU per request | of upstream |"
    sep="|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    pc=
    up=
    if ((WANT_PORTCULLIS)); then pc=$(medians portcullis main "$c"); fi
    if sel upstream; then up=$(medians upstream main "$c"); fi
    if [[ -n $pc ]]; then
      head+=" portcullis req/s ÷ this | portcullis p99 ÷ this | this CPU per request ÷ portcullis's |"
      sep+="---:|---:|---:|"
    fi
    echo "$head"
    echo "$sep"
    for n in "${CONTENDERS[@]}"; do
      m=$(medians "$n" main "$c")
      [[ -n $m ]] || continue
      read -r rps p50 p99 err rss cs cc _ cw co cpr <<<"$m"
      quality "$cs" "$cc" "$co"
      row="| ${LABEL[$n]} | $(fmt_rps "$rps") | $(fmt_us "$p50") | $(fmt_us "$p99") | $err | $(mib "$rss") | $cs · $cw · $co%$MARK | $cpr µs | "
      if [[ -n $up ]]; then row+="$(awk -v a="$rps" -v b="${up%% *}" 'BEGIN { printf "%.0f%%", 100 * a / b }') |"; else row+="n/a |"; fi
      if [[ -n $pc ]]; then
        read -r prps _ pp99 _ _ _ _ _ _ _ pcpr <<<"$pc"
        if [[ $n == portcullis ]]; then row+=" — | — | — |"; else row+=" $(ratio "$prps" "$rps") | $(ratio "$pp99" "$p99") | $(ratio "$cpr" "$pcpr") |"; fi
      fi
      echo "$row"
    done
  done

  if ((${#PART2_NAMES[@]})); then
    echo
    echo "## Second part: what the cache and the access log cost (portcullis, $PART2_CONNS connections)"
    for c in $PART2_CONNS; do
      echo
      echo "| portcullis configuration | req/s | p50 | p99 | errors | peak RSS | CPU srv · wrk · other | CPU per request |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|"
      for n in "${PART2_NAMES[@]}"; do
        m=$(medians "$n" part2 "$c")
        [[ -n $m ]] || continue
        read -r rps p50 p99 err rss cs cc _ cw co cpr <<<"$m"
        label=${LABEL[$n]}
        [[ $n == portcullis ]] && label="${LABEL[pc-nolog]}${LABEL[portcullis]#portcullis}"
        quality "$cs" "$cc" "$co"
        echo "| $label | $(fmt_rps "$rps") | $(fmt_us "$p50") | $(fmt_us "$p99") | $err | $(mib "$rss") | $cs · $cw · $co%$MARK | $cpr µs |"
      done
      echo
      a=$(medians pc-es256-cache part2 "$c")
      b=$(medians pc-es256-nocache part2 "$c")
      if [[ -n $a && -n $b ]]; then
        echo "- ES256, cache on ÷ cache off: **$(ratio "${a%% *}" "${b%% *}")** throughput (bar: ≥ 5x); by CPU per request $(ratio "${b##* }" "${a##* }")"
      fi
      a=$(medians pc-accesslog part2 "$c")
      b=$(medians portcullis part2 "$c")
      if [[ -n $a && -n $b ]]; then
        echo "- Access log on ÷ off: **$(ratio "${a%% *}" "${b%% *}")** throughput; $(echo "$a" | awk '{ printf "%.0f", $8 }') bytes of log per request"
      fi
    done
  fi

  if [[ -n $IDLE_RESULT ]]; then
    read -r opened idle_ok idle_base idle_rss idle_hwm idle_fds <<<"$IDLE_RESULT"
    echo
    echo "## Third part: memory with $IDLE idle keep-alive connections (portcullis)"
    echo
    echo "| connections open | answered 200 | open files | RSS before | RSS with them open | per connection | peak RSS |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    echo "| $opened | $idle_ok | $idle_fds | $(mib "$idle_base") | **$(mib "$idle_rss")** | $(awk -v a="$idle_rss" -v b="$idle_base" -v n="$opened" 'BEGIN { if (n > 0) printf "%.1f KiB", (a - b) / n; else printf "n/a" }') | $(mib "$idle_hwm") |"
    echo
    echo "Open files include the upstream connections the first requests opened (up to 500 at once)."
  fi

  if ((WANT_PORTCULLIS)); then
    echo
    echo "## The bars of issue 6 (this run)"
    echo
    for c in $CONNS; do
      pc=$(medians portcullis main "$c")
      [[ -n $pc ]] || continue
      read -r prps _ pp99 _ prss _ _ _ _ _ pcpr <<<"$pc"
      line="- $c connections:"
      if m=$(medians nginx main "$c") && [[ -n $m ]]; then
        read -r r _ p _ _ _ _ _ _ _ cpr <<<"$m"
        line+=" vs nginx $(ratio "$prps" "$r") req/s (≥ 1.00x; by CPU per request $(ratio "$cpr" "$pcpr")), p99 $(ratio "$pp99" "$p") of nginx's (≤ 1.00x);"
      fi
      if m=$(medians haproxy main "$c") && [[ -n $m ]]; then
        read -r r _ _ _ _ _ _ _ _ _ cpr <<<"$m"
        line+=" vs HAProxy $(ratio "$prps" "$r") (≥ 1.25x; by CPU per request $(ratio "$cpr" "$pcpr"));"
      fi
      if m=$(medians koa main "$c") && [[ -n $m ]]; then
        read -r r _ _ _ _ _ _ _ _ _ cpr <<<"$m"
        line+=" vs Koa $(ratio "$prps" "$r") (≥ 40x; by CPU per request $(ratio "$cpr" "$pcpr"));"
      fi
      line+=" peak RSS $(mib "$prss") (< 32 MiB at 256)"
      echo "$line"
    done
    if [[ -n $IDLE_RESULT ]]; then
      read -r opened _ _ idle_rss _ <<<"$IDLE_RESULT"
      echo "- $opened idle keep-alive connections: RSS $(mib "$idle_rss") (< 200 MiB at 10000)"
    fi
  fi

  if ((CLIENT_BOUND)); then
    NOTES+=("client-bound: the client CPU (wrk, and the upstream for proxied rows) was saturated while the server process used under 90% of its core: that row is limited by the client side, its req/s is a lower bound for the server.")
  fi
  if ((NOISY)); then
    NOTES+=("noisy: other processes on the machine took ≥ ${NOISY_PCT}% of a core during that row's runs (median, after retries): read it with care.")
  fi
  if ((${#NOTES[@]})); then
    echo
    echo "## Notes"
    echo
    printf -- '- %s\n' "${NOTES[@]}"
  fi
  echo
  echo "Raw numbers per run: \`${RAW#"$ROOT"/}\`; wrk outputs: \`${OUT#"$ROOT"/}/wrk/\`; main part took ${MAIN_SECS} s."
} >"$RESULTS"

echo
cat "$RESULTS"
log "done: $RESULTS"
