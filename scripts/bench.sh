#!/usr/bin/env bash
# scripts/bench.sh (`make bench`): measures a single Sluice node against
# baselines run on the same machine in the same run, prints a table with
# ratios and targets, and writes everything to bin/bench-results.json.
# docs/bench.md explains each figure.
#
#   make bench                   default set, about 3 min on 2 cores
#   BENCH_SCALE=1 make bench     adds 1,000 topics x 10 partitions (+1 min)
#   BENCH_REPEAT=3 make bench    three interleaved rounds, medians reported
#   BENCH_GROUP=0 make bench     leaves out the consumer-group section (about
#                                1.5 min: rebalance settle times, commits/s)
#   BENCH_TXN=0 make bench       leaves out the idempotent/transactional
#                                produce section (about 1 min)
#   BENCH_CLUSTER=0 make bench   leaves out the three-node section (about
#                                2 min: RF 3 acks=all produce, leader failover)
#   BENCH_BIG=1 make bench       adds produce/consume on an empty log against
#                                the same log filled to 20 GiB (+about 3 min, and
#                                needs 2.5x that in free disk space)
#
# Knobs (environment, defaults in brackets): BENCH_RECORDS [3000000],
# BENCH_LAT_RECORDS [200000], BENCH_LAT_RATE [100000], BENCH_NATS_RECORDS
# [300000], BENCH_REPEAT [1], BENCH_SCALE [0], BENCH_SCALE_RECORDS [2000000],
# BENCH_BIG [0], BENCH_BIG_GIB [20], BENCH_BIG_ROUNDS [3], BENCH_GROUP [1],
# BENCH_GROUP_HEARTBEAT [250ms], BENCH_GROUP_REBALANCES [20],
# BENCH_GROUP_COMMIT_SEC [5], BENCH_TXN [1], BENCH_TXN_RECORDS [2000000],
# BENCH_TXN_ROUNDS [3], BENCH_CLUSTER [1], BENCH_CLUSTER_ROUNDS [3],
# BENCH_FAILOVER_ROUNDS [10],
# BENCH_PROFILE [0; 1 saves CPU profiles of the broker in bin/bench-profiles/],
# BENCH_TMPDIR [where the data goes; $TMPDIR or /tmp], BENCH_OUT
# [bin/bench-results.json], BENCH_KEEP [0; 1 keeps the temporary directory].
#
# Everything listens on random free loopback ports, data lives in one
# temporary directory, and every process started here is stopped on exit.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SLUICE=${SLUICE:-$ROOT/bin/sluice}
TOOLS=$ROOT/bin/benchtools
OUT=${BENCH_OUT:-$ROOT/bin/bench-results.json}
PROFILE_DIR=$ROOT/bin/bench-profiles
RECORDS=${BENCH_RECORDS:-3000000}
LAT_RECORDS=${BENCH_LAT_RECORDS:-200000}
LAT_RATE=${BENCH_LAT_RATE:-100000}
NATS_RECORDS=${BENCH_NATS_RECORDS:-300000}
SCALE=${BENCH_SCALE:-0}
SCALE_TOPICS=1000
SCALE_PARTS=10
SCALE_RECORDS=${BENCH_SCALE_RECORDS:-2000000}
BIG=${BENCH_BIG:-0}
BIG_GIB=${BENCH_BIG_GIB:-20}
BIG_ROUNDS=${BENCH_BIG_ROUNDS:-3}
FILL_SIZE=65536      # record bytes of the large-log fill
GROUP=${BENCH_GROUP:-1}
GROUP_HEARTBEAT=${BENCH_GROUP_HEARTBEAT:-250ms}
GROUP_REBALANCES=${BENCH_GROUP_REBALANCES:-20}
GROUP_COMMIT_SEC=${BENCH_GROUP_COMMIT_SEC:-5}
TXN=${BENCH_TXN:-1}
TXN_RECORDS=${BENCH_TXN_RECORDS:-2000000}
TXN_ROUNDS=${BENCH_TXN_ROUNDS:-3}
CLUSTER=${BENCH_CLUSTER:-1}
CLUSTER_ROUNDS=${BENCH_CLUSTER_ROUNDS:-3}
FAILOVER_ROUNDS=${BENCH_FAILOVER_ROUNDS:-10}
PROFILE=${BENCH_PROFILE:-0}
REPEAT=${BENCH_REPEAT:-1}
SIZE=100             # record bytes
LINGER=5ms           # producer linger
BATCH=$((1 << 20))   # producer batch bytes
RUN_TIMEOUT=300      # seconds any one measurement may take

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[ -x "$SLUICE" ] || die "$SLUICE is missing; run make build"
if [ "$BIG" = 1 ]; then
  awk -v g="$BIG_GIB" 'BEGIN { exit !(g ~ /^[0-9]+(\.[0-9]+)?$/ && g > 0) }' ||
    die "BENCH_BIG_GIB must be a positive number of GiB, not '$BIG_GIB'"
  [[ "$BIG_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_BIG_ROUNDS must be a positive integer"
fi
if [ "$GROUP" = 1 ]; then
  [[ "$GROUP_REBALANCES" =~ ^[1-9][0-9]*$ ]] || die "BENCH_GROUP_REBALANCES must be a positive integer"
  [[ "$GROUP_COMMIT_SEC" =~ ^[1-9][0-9]*$ ]] || die "BENCH_GROUP_COMMIT_SEC must be a positive number of seconds"
fi
if ! command -v jq >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing jq"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq jq >/dev/null 2>&1 ||
      { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq jq >/dev/null; }
  fi
  command -v jq >/dev/null 2>&1 || die "jq is required (apt-get install jq)"
fi

TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/sluice-bench.XXXXXX") || die "mktemp failed"
RAW=$TMP/raw
ROWS=$TMP/rows.jsonl
mkdir -p "$RAW"
: >"$ROWS"

# ---------------------------------------------------------------- processes

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  # The large log's data goes even with BENCH_KEEP=1: it is tens of GiB.
  rm -rf "$TMP/sluice-big"
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background with its output in
# $TMP/NAME.log and sets PID.
start() {
  local name=$1
  shift
  "$@" >"$TMP/$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
}

# stop PID: SIGTERM, wait up to 60 s, then SIGKILL; sets STOP_MS.
stop() {
  local pid=$1 t0
  t0=$(date +%s%N)
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM for 60 s; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  STOP_MS=$((($(date +%s%N) - t0) / 1000000))
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (at most 20 s).
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

rss_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
cpu_sec() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null; }
jget() { jq -r "$2 // empty" "$1" 2>/dev/null; }

# ---------------------------------------------------------------- results

# row NAME VALUE UNIT BASELINE BASELINE_NAME CHECK THRESHOLD [NOTE]
# CHECK is ratio_ge (VALUE/BASELINE >= THRESHOLD), value_ge, value_lt or
# info. A NOTE starting with SKIP makes the row SKIP; an empty VALUE (or
# BASELINE, for ratio_ge) makes it ERROR.
row() {
  local name=$1 value=$2 unit=$3 base=$4 base_name=$5 check=$6 thresh=$7 note=${8:-}
  local ratio="" status target
  if [ -n "$value" ] && [ -n "$base" ]; then
    ratio=$(awk -v v="$value" -v b="$base" 'BEGIN { if (b + 0 != 0) printf "%.3f", v / b }')
  fi
  case $check in
    ratio_ge) target=">= ${thresh}x" ;;
    value_ge) target=">= $thresh $unit" ;;
    value_lt) target="< $thresh $unit" ;;
    *) target="-" ;;
  esac
  if [ "${note#SKIP}" != "$note" ]; then
    status=SKIP
  elif [ -z "$value" ] || { [ "$check" = ratio_ge ] && [ -z "$ratio" ]; }; then
    status=ERROR
  else
    case $check in
      ratio_ge) status=$(awk -v r="$ratio" -v t="$thresh" 'BEGIN { print (r != "" && r + 0 >= t + 0) ? "PASS" : "MISS" }') ;;
      value_ge) status=$(awk -v v="$value" -v t="$thresh" 'BEGIN { print (v + 0 >= t + 0) ? "PASS" : "MISS" }') ;;
      value_lt) status=$(awk -v v="$value" -v t="$thresh" 'BEGIN { print (v + 0 < t + 0) ? "PASS" : "MISS" }') ;;
      *) status=INFO ;;
    esac
  fi
  jq -nc --arg name "$name" --arg value "$value" --arg unit "$unit" --arg base "$base" \
    --arg base_name "$base_name" --arg ratio "$ratio" --arg check "$check" --arg thresh "$thresh" \
    --arg target "$target" --arg status "$status" --arg note "$note" \
    'def num: tonumber? // null | if . == null then null elif $unit == "rec/s" or $unit == "commits/s" then round else . * 1000 | round / 1000 end;
     {name: $name, value: ($value | num), unit: $unit,
      baseline: ($base | num), baseline_name: $base_name,
      ratio: ($ratio | tonumber? // null), check: $check, threshold: ($thresh | tonumber? // null),
      target: $target, status: $status, note: $note}' >>"$ROWS"
  printf '   %-40s %s\n' "$name" "$(fmtv "$value" "$unit") $status" >&2
}

# fmtv VALUE UNIT: records/s without decimals, the rest with two.
fmtv() {
  [ -n "$1" ] || { printf -- '-'; return; }
  case $2 in
    rec/s | commits/s) awk -v v="$1" -v u="$2" 'BEGIN { printf "%.0f %s", v, u }' ;;
    *) awk -v v="$1" -v u="$2" 'BEGIN { printf "%.2f %s", v, u }' ;;
  esac
}

# keep NAME FILE: files a tool's JSON output under raw.NAME in the results.
keep() { [ -s "$2" ] && jq -e . "$2" >/dev/null 2>&1 && cp "$2" "$RAW/$1.json"; }

# note_raw NAME JSON: adds a JSON value of the script's own under raw.NAME.
note_raw() { printf '%s\n' "$2" >"$RAW/$1.json"; }

# ---------------------------------------------------------------- build

log "building bench tools"
mkdir -p "$TOOLS"
go build -o "$TOOLS/" ./internal/benchtools/... || die "go build ./internal/benchtools/... failed"
read -r -a FREE < <("$TOOLS/probe" ports 40 | xargs) || die "no free ports"
port() { PORT=${FREE[0]}; FREE=("${FREE[@]:1}"); }

# ---------------------------------------------------------------- machine

CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
MEM_GIB=$(awk '$1 == "MemTotal:" { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
FSTYPE=$(df -T "$TMP" | awk 'NR == 2 { print $2 }')
FSDEV=$(df -T "$TMP" | awk 'NR == 2 { print $1 }')
MACHINE=$(jq -nc --arg nproc "$(nproc)" --arg cpu "$CPU_MODEL" --arg mem "$MEM_GIB" \
  --arg kernel "$(uname -r)" --arg fs "$FSTYPE" --arg dev "$FSDEV" --arg dir "$TMP" \
  --arg go "$(go env GOVERSION)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null)" \
  --arg os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{nproc: ($nproc | tonumber), cpu: $cpu, mem_gib: ($mem | tonumber), kernel: $kernel, os: $os, loadavg_start: $load,
    data_dir: $dir, data_fs: $fs, data_dev: $dev, go: $go, commit: $rev}')
log "machine: $(nproc) cores, $CPU_MODEL, $MEM_GIB GiB, data on $FSDEV ($FSTYPE)"
[ "$FSTYPE" = tmpfs ] && log "warning: $TMP is on tmpfs, so nothing here touches a disk; set BENCH_TMPDIR"
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$LOAD1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }' &&
  log "warning: load average $LOAD1 on $(nproc) cores: other work is running, the figures will be noisy (BENCH_REPEAT=3 helps)"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T_ALL=$(date +%s)

# ---------------------------------------------------------------- machine limits

log "disk: 1 GiB sequential write, O_DIRECT + fsync, in $TMP"
dd_secs() { LC_ALL=C sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p' "$1" | tail -1; }
if timeout $RUN_TIMEOUT dd if=/dev/zero of="$TMP/dd.bin" bs=1M count=1024 oflag=direct conv=fsync 2>"$TMP/dd.log"; then
  s=$(dd_secs "$TMP/dd.log")
  DISK_MIBS=$(awk -v s="$s" 'BEGIN { if (s > 0) printf "%.1f", 1024 / s }')
else
  DISK_MIBS=""
fi
rm -f "$TMP/dd.bin"
row "disk seq write (1M, direct+fsync)" "$DISK_MIBS" MiB/s "" "" info "" "$(tail -1 "$TMP/dd.log" 2>/dev/null)"

log "disk: 4 KiB writes each fsynced (O_DSYNC), the cost of one group commit"
if timeout $RUN_TIMEOUT dd if=/dev/zero of="$TMP/dsync.bin" bs=4k count=1000 oflag=direct,dsync 2>"$TMP/dsync.log"; then
  s=$(dd_secs "$TMP/dsync.log")
  FSYNC_MS=$(awk -v s="$s" 'BEGIN { printf "%.3f", s * 1000 / 1000 }') # ms per write
else
  FSYNC_MS=""
fi
rm -f "$TMP/dsync.bin"
row "disk fsynced 4K write latency" "$FSYNC_MS" ms "" "" info "" "mean of 1000 O_DSYNC writes"

if ! command -v iperf3 >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  log "installing iperf3"
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq iperf3 >/dev/null 2>&1 ||
    { timeout 300 apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq iperf3 >/dev/null 2>&1; }
fi
if command -v iperf3 >/dev/null 2>&1; then
  log "loopback: iperf3, 3 s, one stream"
  port
  start iperf3 iperf3 -s -B 127.0.0.1 -p "$PORT"
  IPERF_PID=$PID
  LOOP_GBITS=""
  # Not wait_port: the server would take that connection for a test.
  for _ in $(seq 100); do grep -q "listening" "$TMP/iperf3.log" 2>/dev/null && break; sleep 0.1; done
  if timeout 60 iperf3 -c 127.0.0.1 -p "$PORT" -t 3 -J >"$TMP/iperf3.json" 2>/dev/null; then
    LOOP_GBITS=$(jq -r '.end.sum_received.bits_per_second // empty | . / 1e9 | . * 100 | round / 100' "$TMP/iperf3.json")
    jq '{version: .start.version, sum_sent: .end.sum_sent, sum_received: .end.sum_received,
        cpu_utilization_percent: .end.cpu_utilization_percent}' "$TMP/iperf3.json" >"$RAW/iperf3.json"
  fi
  stop "$IPERF_PID"
  row "loopback TCP bandwidth (iperf3)" "$LOOP_GBITS" Gbit/s "" "" info ""
else
  row "loopback TCP bandwidth (iperf3)" "" Gbit/s "" "" info "" "SKIP: iperf3 not installed and cannot be installed"
fi

# ---------------------------------------------------------------- runners

# produce ADDR TOPIC ACKS RECORDS [RATE [LINGER]] and consume ADDR TOPIC RECORDS
# print `sluice bench` JSON.
produce() {
  timeout --kill-after=10 $RUN_TIMEOUT "$SLUICE" bench produce --brokers "$1" --topic "$2" --acks "$3" \
    --records "$4" --rate "${5:-0}" --record-size $SIZE --linger "${6:-$LINGER}" --batch-bytes $BATCH \
    --partitions 1 --producers 1 --format json
}
consume() {
  timeout --kill-after=10 $RUN_TIMEOUT "$SLUICE" bench consume --brokers "$1" --topic "$2" --records "$3" --format json
}

# measure NAME PID CMD...: runs CMD (a bench or natsbench), keeps its JSON
# as raw.NAME with the server's CPU seconds over the run added, appends the
# rate and p99 to the samples of NAME without its _rN suffix, and sets RATE
# and P99 (empty when the run failed).
SAMPLES=$TMP/samples
mkdir -p "$SAMPLES"
measure() {
  local name=$1 pid=$2 c0 c1 k0 k1 load
  shift 2
  load=$(cut -d' ' -f1 /proc/loadavg)
  c0=$(cpu_sec "$pid")
  children_cpu
  k0=$CHILD_CPU
  "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
  children_cpu
  k1=$CHILD_CPU
  c1=$(cpu_sec "$pid")
  RATE="" P99=""
  if jq -e . "$TMP/$name.json" >/dev/null 2>&1; then
    jq --argjson cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" --argjson load "$load" \
      --argjson ccpu "$(awk -v a="$k0" -v b="$k1" 'BEGIN { printf "%.2f", b - a }')" \
      '. + {server_cpu_sec: $cpu, client_cpu_sec: $ccpu, loadavg_1m_before: $load}' "$TMP/$name.json" >"$RAW/$name.json"
    RATE=$(jget "$RAW/$name.json" .records_per_sec)
    P99=$(jget "$RAW/$name.json" .p99_ms)
    if [ "$(jget "$RAW/$name.json" .errors)" != 0 ]; then
      log "$name: $(jget "$RAW/$name.json" .errors) errors, first: $(jget "$RAW/$name.json" .first_error)"
      RATE="" P99=""
    fi
  else
    log "$name failed: $(tail -3 "$TMP/$name.err")"
  fi
  [ -n "$RATE" ] && echo "$RATE" >>"$SAMPLES/${name%_r*}.rate" &&
    jq -r '.server_cpu_sec * 1e6 / .records' "$RAW/$name.json" >>"$SAMPLES/${name%_r*}.cpu" &&
    jq -r '.client_cpu_sec * 1e6 / .records' "$RAW/$name.json" >>"$SAMPLES/${name%_r*}.ccpu"
  [ -n "$P99" ] && echo "$P99" >>"$SAMPLES/${name%_r*}.p99"
  log "$name: $(fmtv "$RATE" rec/s)${P99:+, p99 $P99 ms} (load $load)"
}

# children_cpu: sets CHILD_CPU to the user+system seconds of this shell's
# finished children so far. It must not be called in $(...): bash's `times`
# in a subshell would see only that subshell's children.
children_cpu() {
  times >"$TMP/times"
  CHILD_CPU=$(tail -1 "$TMP/times" |
    awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.2f", t }')
}

# median NAME.KIND: the median of the samples (empty when there are none).
median() {
  [ -s "$SAMPLES/$1" ] || return 0
  sort -g "$SAMPLES/$1" | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# spread NAME.KIND: "n=3, min..max" of the samples, for the notes.
spread() {
  [ -s "$SAMPLES/$1" ] || return 0
  sort -g "$SAMPLES/$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf "n=%d, %.0f..%.0f", NR, lo, hi }'
}

# Topics: one of each kind per round, seeded in kfake and created in Sluice
# before any measurement, so none includes a topic creation.
TOPICS=()
for r in $(seq "$REPEAT"); do
  TOPICS+=("bench-acks1-$r" "bench-acksall-$r" "bench-lat1-$r" "bench-latall-$r")
done

# ---------------------------------------------------------------- servers

log "baseline: franz-go kfake (in memory), one broker"
port
start kfake "$TOOLS/kfakeserver" -port "$PORT" -partitions 1 -topics "$(IFS=,; echo "${TOPICS[*]}")"
KFAKE_PID=$PID
KFAKE=127.0.0.1:$PORT
wait_port "$PORT" || die "kfakeserver did not start: $(tail -3 "$TMP/kfake.log")"

NATS_SERVER=$(command -v nats-server || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; })
NATS_PID=""
if [ -n "$NATS_SERVER" ]; then
  log "baseline: NATS JetStream, file storage, async publish ($("$NATS_SERVER" --version 2>/dev/null))"
  port
  NATS_URL=nats://127.0.0.1:$PORT
  mkdir -p "$TMP/nats"
  start nats "$NATS_SERVER" -js -sd "$TMP/nats" -a 127.0.0.1 -p "$PORT"
  NATS_PID=$PID
  wait_port "$PORT" || { log "nats-server did not start: $(tail -3 "$TMP/nats.log")"; NATS_PID=""; }
else
  log "nats-server is not installed: skipping the NATS JetStream baseline"
fi

# start_sluice DATA_DIR [SERVE_ARGS...]: starts `sluice serve` (with any
# extra arguments), waits for a Metadata answer (and MIN_PARTS partitions
# with a leader, default 0) and sets SLUICE_PID, READY_MS (first answer) and
# FULL_READY_MS.
port; S_KAFKA=$PORT
port; S_HTTP=$PORT
port; S_RAFT=$PORT
SLUICE_ADDR=127.0.0.1:$S_KAFKA
start_sluice() {
  local t0
  t0=$(date +%s%N)
  start sluice "$SLUICE" serve --data-dir "$1" --kafka-addr "$SLUICE_ADDR" \
    --http-addr "127.0.0.1:$S_HTTP" --raft-addr "127.0.0.1:$S_RAFT" --log-level warn "${@:2}"
  SLUICE_PID=$PID
  READY_MS="" FULL_READY_MS=""
  if "$TOOLS/probe" kafka -addr "$SLUICE_ADDR" -since "$t0" -min-partitions "${MIN_PARTS:-0}" \
    -timeout 120s >"$TMP/ready.json" 2>"$TMP/ready.err"; then
    READY_MS=$(jget "$TMP/ready.json" .first_answer_ms)
    FULL_READY_MS=$(jget "$TMP/ready.json" .ready_ms)
  else
    log "sluice did not answer Metadata: $(cat "$TMP/ready.err"); log: $(tail -3 "$TMP/sluice.log")"
  fi
}

# profile NAME SECONDS: with BENCH_PROFILE=1, fetches a CPU profile of the
# broker in the background while the next measurement runs.
profile() {
  [ "$PROFILE" = 1 ] || return 0
  mkdir -p "$PROFILE_DIR"
  curl -sf -m $(($2 + 30)) -o "$PROFILE_DIR/$1.pprof" "http://127.0.0.1:$S_HTTP/debug/pprof/profile?seconds=$2" &
  PROF_PID=$!
}
profile_wait() { [ "$PROFILE" = 1 ] && wait "$PROF_PID" 2>/dev/null && log "profile: $PROFILE_DIR/$1.pprof"; }

# page_cache DIR: percent of DIR's *.log bytes in the page cache (fincore).
page_cache() {
  command -v fincore >/dev/null 2>&1 || return 0
  find "$1" -name '*.log' -print0 | xargs -0 -r fincore -b -n -o RES,SIZE 2>/dev/null |
    awk '{ r += $1; s += $2 } END { if (s > 0) printf "%.1f", 100 * r / s }'
}

log "sluice on $SLUICE_ADDR, data in $TMP/sluice"
start_sluice "$TMP/sluice"
row "sluice cold start (Metadata answered)" "$READY_MS" ms "" "" info ""
sleep 2
row "sluice idle RSS after start" "$(rss_mib "$SLUICE_PID" VmRSS)" MiB "" "" value_lt 100
timeout 60 "$SLUICE" topic create --brokers "$SLUICE_ADDR" -p 1 "${TOPICS[@]}" \
  >"$TMP/create.log" 2>&1 || log "topic create failed: $(tail -3 "$TMP/create.log")"

# ---------------------------------------------------------------- rounds

# Each round runs every Sluice measurement right after the same one against
# its baseline, so a neighbour's load on a shared machine hits both alike.
CACHE_NOTES=()
for r in $(seq "$REPEAT"); do
  log "round $r of $REPEAT"
  measure kfake_produce_acks1_r$r "$KFAKE_PID" produce "$KFAKE" "bench-acks1-$r" 1 "$RECORDS"
  [ "$r" = 1 ] && profile produce_acks1 4
  measure sluice_produce_acks1_r$r "$SLUICE_PID" produce "$SLUICE_ADDR" "bench-acks1-$r" 1 "$RECORDS"
  [ "$r" = 1 ] && profile_wait produce_acks1
  if [ -n "$NATS_PID" ]; then
    measure nats_publish_r$r "$NATS_PID" timeout --kill-after=10 $RUN_TIMEOUT "$TOOLS/natsbench" \
      -url "$NATS_URL" -records "$NATS_RECORDS" -size $SIZE -window 4096
  fi

  measure kfake_produce_acksall_r$r "$KFAKE_PID" produce "$KFAKE" "bench-acksall-$r" all "$RECORDS"
  [ "$r" = 1 ] && profile produce_acksall 4
  measure sluice_produce_acksall_r$r "$SLUICE_PID" produce "$SLUICE_ADDR" "bench-acksall-$r" all "$RECORDS"
  [ "$r" = 1 ] && profile_wait produce_acksall

  # Consume from disk: flush and, when allowed (root), drop the page cache
  # so that Sluice reads from the device; record how much was still cached.
  measure kfake_consume_r$r "$KFAKE_PID" consume "$KFAKE" "bench-acks1-$r" "$RECORDS"
  sync
  if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropped=true; else dropped=false; fi
  cached=$(page_cache "$TMP/sluice/bench-acks1-$r-0")
  CACHE_NOTES+=("dropped=$dropped cached=${cached:-?}%")
  note_raw "page_cache_r$r" "{\"dropped\": $dropped, \"cached_pct\": ${cached:-null}}"
  [ "$r" = 1 ] && profile consume 3
  measure sluice_consume_r$r "$SLUICE_PID" consume "$SLUICE_ADDR" "bench-acks1-$r" "$RECORDS"
  [ "$r" = 1 ] && profile_wait consume
  # The same again from the page cache: tells the disk apart from the fetch path.
  measure sluice_consume_warm_r$r "$SLUICE_PID" consume "$SLUICE_ADDR" "bench-acks1-$r" "$RECORDS"

  measure kfake_latency_acks1_r$r "$KFAKE_PID" produce "$KFAKE" "bench-lat1-$r" 1 "$LAT_RECORDS" "$LAT_RATE"
  measure sluice_latency_acks1_r$r "$SLUICE_PID" produce "$SLUICE_ADDR" "bench-lat1-$r" 1 "$LAT_RECORDS" "$LAT_RATE"
  measure kfake_latency_acksall_r$r "$KFAKE_PID" produce "$KFAKE" "bench-latall-$r" all "$LAT_RECORDS" "$LAT_RATE"
  measure sluice_latency_acksall_r$r "$SLUICE_PID" produce "$SLUICE_ADDR" "bench-latall-$r" all "$LAT_RECORDS" "$LAT_RATE"
  # With linger 0 the client adds no wait of its own: what is left is the
  # round trip and the broker (and, for acks=all, the fsync).
  measure kfake_latency0_acks1_r$r "$KFAKE_PID" produce "$KFAKE" "bench-lat1-$r" 1 "$LAT_RECORDS" "$LAT_RATE" 0
  measure sluice_latency0_acks1_r$r "$SLUICE_PID" produce "$SLUICE_ADDR" "bench-lat1-$r" 1 "$LAT_RECORDS" "$LAT_RATE" 0
  measure kfake_latency0_acksall_r$r "$KFAKE_PID" produce "$KFAKE" "bench-latall-$r" all "$LAT_RECORDS" "$LAT_RATE" 0
  measure sluice_latency0_acksall_r$r "$SLUICE_PID" produce "$SLUICE_ADDR" "bench-latall-$r" all "$LAT_RECORDS" "$LAT_RATE" 0
done
note_raw kfake_rss "{\"peak_rss_mib\": $(rss_mib "$KFAKE_PID" VmHWM || echo null)}"
stop "$KFAKE_PID"
[ -n "$NATS_PID" ] && stop "$NATS_PID"

# rate_row NAME SAMPLES BASELINE_SAMPLES BASELINE_NAME CHECK THRESHOLD [NOTE]
rate_row() {
  local spread_s spread_b note=${7:-}
  spread_s=$(spread "$2.rate") spread_b=$(spread "$3.rate")
  [ -n "$spread_s" ] && note="${note:+$note; }sluice $spread_s; baseline $spread_b"
  row "$1" "$(median "$2.rate")" rec/s "$(median "$3.rate")" "$4" "$5" "$6" "$note"
}

S_ACKS1=$(median sluice_produce_acks1.rate)
rate_row "produce acks=1 vs kfake" sluice_produce_acks1 kfake_produce_acks1 kfake ratio_ge 0.70
rate_row "produce acks=1 vs NATS JetStream" sluice_produce_acks1 nats_publish nats ratio_ge 10 \
  "$([ -z "$NATS_SERVER" ] && echo "SKIP: nats-server not installed")"
rate_row "produce acks=all (fsynced)" sluice_produce_acksall kfake_produce_acksall "kfake acks=all" value_ge 1000000
if [ -n "$DISK_MIBS" ] && [ -n "$(median sluice_produce_acksall.rate)" ]; then
  row "acks=all MiB/s vs disk seq write" \
    "$(awk -v r="$(median sluice_produce_acksall.rate)" -v s=$SIZE 'BEGIN { printf "%.2f", r * s / 1048576 }')" \
    MiB/s "$DISK_MIBS" "dd direct+fsync" info ""
fi
rate_row "consume from disk vs kfake" sluice_consume kfake_consume kfake ratio_ge 0.80 \
  "page cache before each Sluice consume: ${CACHE_NOTES[*]}"
rate_row "consume, page cache warm" sluice_consume_warm kfake_consume kfake info ""
row "broker CPU s per 1M records, acks=1" "$(median sluice_produce_acks1.cpu)" s \
  "$(median kfake_produce_acks1.cpu)" kfake info ""
row "broker CPU s per 1M records, acks=all" "$(median sluice_produce_acksall.cpu)" s \
  "$(median kfake_produce_acksall.cpu)" "kfake acks=all" info ""
row "broker CPU s per 1M records, consume" "$(median sluice_consume.cpu)" s \
  "$(median kfake_consume.cpu)" kfake info ""
row "client CPU s per 1M records, acks=all" "$(median sluice_produce_acksall.ccpu)" s \
  "$(median kfake_produce_acksall.ccpu)" "kfake acks=all" info "the franz-go bench client, on the same cores"
row "p99 latency acks=1 @ $LAT_RATE rec/s" "$(median sluice_latency_acks1.p99)" ms \
  "$(median kfake_latency_acks1.p99)" kfake value_lt 5
row "p99 latency acks=all @ $LAT_RATE rec/s" "$(median sluice_latency_acksall.p99)" ms \
  "$(median kfake_latency_acksall.p99)" "kfake acks=all" value_lt 5
row "p99 latency acks=1 @ $LAT_RATE, linger 0" "$(median sluice_latency0_acks1.p99)" ms \
  "$(median kfake_latency0_acks1.p99)" kfake info ""
row "p99 latency acks=all @ $LAT_RATE, linger 0" "$(median sluice_latency0_acksall.p99)" ms \
  "$(median kfake_latency0_acksall.p99)" "kfake acks=all" info ""
row "sluice peak RSS during the load" "$(rss_mib "$SLUICE_PID" VmHWM)" MiB "" "" info ""

stop "$SLUICE_PID"
row "clean shutdown (SIGTERM to exit)" "$STOP_MS" ms "" "" info ""
start_sluice "$TMP/sluice"
row "clean restart to Metadata answer" "$(awk -v m="$READY_MS" 'BEGIN { if (m != "") printf "%.3f", m / 1000 }')" s "" "" value_lt 10 \
  "$(du -sh "$TMP/sluice" | cut -f1) of data"
stop "$SLUICE_PID"

# ---------------------------------------------------------------- groups

# Consumer groups (BENCH_GROUP=1, the default), on a fresh Sluice node served
# with group.initial.rebalance.delay.ms=0 and a fresh kfake (which has no
# initial delay), each measurement right after the same one against kfake.
# settle: 10 members on a 20-partition topic, then GROUP_REBALANCES times an
# 11th member joins and leaves; each change is timed until the assignment
# callbacks show every partition held exactly once. commit: OffsetCommit
# requests of one partition each, from 8 clients with 1 or 8 committers
# each, spread over 8 groups or all in one, for GROUP_COMMIT_SEC seconds.
if [ "$GROUP" = 1 ]; then
  log "groups: settle times and offset commits/s, on a fresh node and a fresh kfake"
  port
  start kfake_group "$TOOLS/kfakeserver" -port "$PORT" -partitions 1
  KFAKE_PID=$PID
  KFAKE=127.0.0.1:$PORT
  GROUP_BASE=(kfake sluice)
  wait_port "$PORT" || { log "kfakeserver did not start: $(tail -3 "$TMP/kfake_group.log")"; GROUP_BASE=(sluice); }
  start_sluice "$TMP/sluice-group" --set group.initial.rebalance.delay.ms=0
  GROUP_VARIANTS=("1 8" "1 1" "8 8" "8 1") # committers per client, groups

  # group_run NAME PID ADDR ARGS...: `sluice bench group --format json ARGS`
  # against ADDR, kept as raw.NAME with the server's CPU seconds added.
  group_run() {
    local name=$1 pid=$2 addr=$3 c0 c1
    shift 3
    c0=$(cpu_sec "$pid")
    timeout --kill-after=10 $RUN_TIMEOUT "$SLUICE" bench group --brokers "$addr" --format json \
      --timeout "$((RUN_TIMEOUT - 10))s" "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
    c1=$(cpu_sec "$pid")
    if jq -e . "$TMP/$name.json" >/dev/null 2>&1; then
      jq --argjson cpu "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" \
        '. + {server_cpu_sec: $cpu}' "$TMP/$name.json" >"$RAW/$name.json"
      [ "$(jget "$RAW/$name.json" .errors)" = 0 ] ||
        log "$name: $(jget "$RAW/$name.json" .errors) errors, first: $(jget "$RAW/$name.json" .first_error)"
    else
      log "$name failed: $(tail -3 "$TMP/$name.err")"
    fi
  }
  # group_samples NAME: files the figures of raw.NAME as samples of NAME
  # without its _rN suffix (settle runs that failed give none).
  group_samples() {
    local f=$RAW/$1.json base=$SAMPLES/${1%_r*} b k v
    [ -s "$f" ] || return 0
    for b in range cooperative-sticky; do
      for k in join_p50_ms join_p99_ms join_max_ms leave_p50_ms leave_p99_ms form_ms; do
        v=$(jq -r --arg b "$b" --arg k "$k" \
          '.settle[]? | select(.balancer == $b and (.error // "") == "" and .joins > 0) | .[$k]' "$f")
        [ -n "$v" ] && echo "$v" >>"$base.$b.$k"
      done
    done
    jq -r '.commit[]? | select(.errors == 0) | .commits_per_sec' "$f" >>"$base.rate"
    jq -r '.commit[]? | select(.errors == 0 and .commits > 0) | .p99_ms' "$f" >>"$base.p99"
    jq -r '. as $r | .commit[]? | select(.errors == 0 and .commits > 0) | $r.server_cpu_sec * 1e6 / .commits' "$f" >>"$base.cpu"
    for k in rate p99 cpu; do [ -s "$base.$k" ] || rm -f "$base.$k"; done
  }

  for r in $(seq "$REPEAT"); do
    log "groups: round $r of $REPEAT, settle ($GROUP_REBALANCES joins and leaves per balancer, heartbeat $GROUP_HEARTBEAT)"
    for who in "${GROUP_BASE[@]}"; do
      if [ $who = kfake ]; then pid=$KFAKE_PID addr=$KFAKE; else pid=$SLUICE_PID addr=$SLUICE_ADDR; fi
      group_run "${who}_group_settle_r$r" "$pid" "$addr" --measure settle --members 10 --partitions 20 \
        --rebalances "$GROUP_REBALANCES" --heartbeat "$GROUP_HEARTBEAT"
      group_samples "${who}_group_settle_r$r"
    done
    for v in "${GROUP_VARIANTS[@]}"; do
      read -r inflight groups <<<"$v"
      log "groups: round $r, commits from 8 clients x $inflight in flight over $groups group(s), ${GROUP_COMMIT_SEC}s each"
      for who in "${GROUP_BASE[@]}"; do
        if [ $who = kfake ]; then pid=$KFAKE_PID addr=$KFAKE; else pid=$SLUICE_PID addr=$SLUICE_ADDR; fi
        [ "$r$who" = 1sluice ] && profile "group_commit_${inflight}x_${groups}g" 3
        group_run "${who}_group_commit_${inflight}x_${groups}g_r$r" "$pid" "$addr" --measure commit --partitions 20 \
          --clients 8 --inflight "$inflight" --groups "$groups" --commits 10000000 --duration "${GROUP_COMMIT_SEC}s"
        [ "$r$who" = 1sluice ] && profile_wait "group_commit_${inflight}x_${groups}g"
        group_samples "${who}_group_commit_${inflight}x_${groups}g_r$r"
      done
    done
  done

  for b in range cooperative-sticky; do
    label=$b
    [ $b = cooperative-sticky ] && label=coop-sticky
    for ev in join leave; do
      check=info
      [ $ev = join ] && check=value_lt
      row "group settle p99 after $ev, $label" "$(median "sluice_group_settle.$b.${ev}_p99_ms")" ms \
        "$(median "kfake_group_settle.$b.${ev}_p99_ms")" kfake $check 1000 \
        "10 members, 20 partitions, $GROUP_REBALANCES ${ev}s of an 11th member, heartbeat $GROUP_HEARTBEAT; sluice p50 $(median "sluice_group_settle.$b.${ev}_p50_ms") ms$([ $ev = join ] && echo ", max $(median "sluice_group_settle.$b.join_max_ms") ms, forming the group $(median "sluice_group_settle.$b.form_ms") ms"); kfake p50 $(median "kfake_group_settle.$b.${ev}_p50_ms") ms"
    done
  done
  for v in "${GROUP_VARIANTS[@]}"; do
    read -r inflight groups <<<"$v"
    n=${inflight}x_${groups}g
    row "offset commits/s, 8 clients x $inflight, $groups group$([ "$groups" != 1 ] && echo s)" \
      "$(median "sluice_group_commit_$n.rate")" commits/s "$(median "kfake_group_commit_$n.rate")" kfake value_ge 20000 \
      "$((8 * inflight)) requests in flight; p99 $(median "sluice_group_commit_$n.p99") ms (kfake $(median "kfake_group_commit_$n.p99") ms); broker CPU per commit $(awk -v c="$(median "sluice_group_commit_$n.cpu")" 'BEGIN { if (c != "") printf "%.0f", c }') us (kfake $(awk -v c="$(median "kfake_group_commit_$n.cpu")" 'BEGIN { if (c != "") printf "%.0f", c }') us); Sluice answers once the commit is in __consumer_offsets (fsynced within 20 ms, unwaited), kfake keeps offsets in memory"
  done
  stop "$SLUICE_PID"
  stop "$KFAKE_PID"
fi

# ---------------------------------------------------------------- transactions

# Idempotent and transactional producers (BENCH_TXN=1, the default), on a
# fresh node: TXN_ROUNDS interleaved rounds of acks=all without
# idempotence, idempotent, and transactional with a commit every 100 ms
# (each commit flushes, then ends the transaction), 6 partitions each.
if [ "$TXN" = 1 ]; then
  log "transactions: acks=all, idempotent and transactional produce, $TXN_ROUNDS interleaved rounds"
  start_sluice "$TMP/sluice-txn"
  txn_produce() { # ADDR TOPIC EXTRA_FLAGS...
    local addr=$1 topic=$2
    shift 2
    timeout --kill-after=10 $RUN_TIMEOUT "$SLUICE" bench produce --brokers "$addr" --topic "$topic" --acks all \
      --records "$TXN_RECORDS" --record-size $SIZE --linger "$LINGER" --batch-bytes $BATCH \
      --partitions 6 --producers 1 --format json "$@"
  }
  for r in $(seq "$TXN_ROUNDS"); do
    measure sluice_txn_plain_r$r "$SLUICE_PID" txn_produce "$SLUICE_ADDR" "bench-txn-plain-$r"
    measure sluice_txn_idem_r$r "$SLUICE_PID" txn_produce "$SLUICE_ADDR" "bench-txn-idem-$r" --idempotent
    measure sluice_txn_txn_r$r "$SLUICE_PID" txn_produce "$SLUICE_ADDR" "bench-txn-txn-$r" --transactional 100ms
  done
  rate_row "idempotent produce vs acks=all" sluice_txn_idem sluice_txn_plain "acks=all, not idempotent" ratio_ge 0.90 \
    "6 partitions, 1 client; idempotent keeps 1 request in flight per broker (franz-go), the plain run 5"
  rate_row "transactional produce (commit /100 ms) vs idempotent" sluice_txn_txn sluice_txn_idem "idempotent" ratio_ge 0.60 \
    "each commit flushes the client, then EndTxn writes a marker to every partition and fsyncs"
  stop "$SLUICE_PID"
fi

# ---------------------------------------------------------------- cluster

# Three nodes on this machine (BENCH_CLUSTER=1, the default): acks=all
# produce to a topic with RF 3 and min.insync.replicas 2, against the
# single-node acks=1 rate of the first section; then leader failover times
# (`sluice bench failover`: SIGKILL the leader, first acks=all
# acknowledgement on the new one) with the default gossip probe interval
# and a tuned one.
if [ "$CLUSTER" = 1 ]; then
  log "cluster: three nodes, RF 3, acks=all, $CLUSTER_ROUNDS rounds"
  C_ADDRS=() C_GOSSIP=() C_PIDS=()
  for i in 1 2 3; do port; C_GOSSIP+=("127.0.0.1:$PORT"); done
  for i in 1 2 3; do
    port; k=$PORT; port; h=$PORT; port; rf=$PORT
    C_ADDRS+=("127.0.0.1:$k")
    start "cluster$i" "$SLUICE" serve --node-id "$i" --data-dir "$TMP/cluster$i" --kafka-addr "127.0.0.1:$k" \
      --http-addr "127.0.0.1:$h" --raft-addr "127.0.0.1:$rf" --gossip-addr "${C_GOSSIP[$((i - 1))]}" \
      --join "$(IFS=,; echo "${C_GOSSIP[*]}")" --bootstrap-expect 3 --log-level warn \
      --set default.replication.factor=3 --set min.insync.replicas=2
    C_PIDS+=("$PID")
  done
  for a in "${C_ADDRS[@]}"; do wait_port "${a##*:}" || log "cluster node $a did not start"; done
  "$TOOLS/probe" kafka -addr "${C_ADDRS[0]}" -since "$(date +%s%N)" -timeout 60s >/dev/null 2>&1 || log "cluster: no Metadata answer"
  sleep 2 # the three brokers registered
  for r in $(seq "$CLUSTER_ROUNDS"); do
    measure cluster_acksall_r$r "${C_PIDS[0]}" produce "${C_ADDRS[0]}" "bench-cluster-$r" all "$RECORDS"
  done
  C_CPU=""
  for pid in "${C_PIDS[@]}"; do C_CPU="$C_CPU $(cpu_sec "$pid")"; done
  rate_row "3 nodes RF 3 acks=all vs 1 node acks=1" cluster_acksall sluice_produce_acks1 "1 node acks=1 (first section)" ratio_ge 0.40 \
    "1 partition, min.insync.replicas 2, every replica fsyncs before the ack; 3 processes on $(nproc) cores; CPU s of the nodes over the section:$C_CPU"
  for pid in "${C_PIDS[@]}"; do stop "$pid"; done

  failover() { # NAME PROBE [BENCH_FAILOVER_FLAGS...]
    log "cluster: leader failover, $FAILOVER_ROUNDS kills, gossip probe interval $2"
    if timeout --kill-after=10 $((RUN_TIMEOUT * 2)) "$SLUICE" bench failover --rounds "$FAILOVER_ROUNDS" \
      --gossip-probe-interval "$2" "${@:3}" --format json >"$TMP/$1.json" 2>"$TMP/$1.err"; then
      keep "$1" "$TMP/$1.json"
      FO_P99=$(jget "$TMP/$1.json" .p99_ms) FO_P50=$(jget "$TMP/$1.json" .p50_ms) FO_MAX=$(jget "$TMP/$1.json" .max_ms)
    else
      log "failover bench failed: $(tail -3 "$TMP/$1.err")"
      FO_P99="" FO_P50="" FO_MAX=""
    fi
  }
  failover failover_default 400ms
  row "leader failover p99, default timeouts" "$FO_P99" ms "" "" value_lt 3000 \
    "kill -9 of the leader to the first acks=all ack on the new one; $FAILOVER_ROUNDS rounds, p50 $FO_P50 ms, max $FO_MAX ms; gossip probe 400 ms (the default)"
  failover failover_tuned 100ms --retry-backoff 50ms
  row "leader failover p99, tuned" "$FO_P99" ms "" "" value_lt 1000 \
    "--gossip-probe-interval 100ms, producer retry backoff 50 ms; $FAILOVER_ROUNDS rounds, p50 $FO_P50 ms, max $FO_MAX ms"
fi

# ---------------------------------------------------------------- scale

if [ "$SCALE" = 1 ]; then
  NPARTS=$((SCALE_TOPICS * SCALE_PARTS))
  log "scale: $SCALE_TOPICS topics x $SCALE_PARTS partitions on a fresh node"
  DATA=$TMP/sluice-scale
  start_sluice "$DATA"
  S_IDLE0=$(rss_mib "$SLUICE_PID" VmRSS)
  "$TOOLS/manyparts" create -brokers "$SLUICE_ADDR" -topics $SCALE_TOPICS -partitions $SCALE_PARTS \
    -batch 100 -timeout ${RUN_TIMEOUT}s >"$TMP/scale_create.json" 2>"$TMP/scale_create.err" ||
    log "create failed: $(tail -3 "$TMP/scale_create.err")"
  keep scale_create "$TMP/scale_create.json"
  CREATE_S=""
  [ "$(jget "$TMP/scale_create.json" .errors)" = 0 ] && CREATE_S=$(jget "$TMP/scale_create.json" .elapsed_sec)
  row "create $SCALE_TOPICS topics x $SCALE_PARTS partitions" "$CREATE_S" s "" "" value_lt 30 "CreateTopics in batches of 100"
  sleep 3
  row "idle RSS with $NPARTS partitions" "$(rss_mib "$SLUICE_PID" VmRSS)" MiB "" "" value_lt 1024 \
    "RSS before creating: ${S_IDLE0:-?} MiB"

  profile produce_many 10
  measure scale_produce "$SLUICE_PID" timeout --kill-after=10 $RUN_TIMEOUT "$TOOLS/manyparts" produce \
    -brokers "$SLUICE_ADDR" -topics $SCALE_TOPICS -partitions $SCALE_PARTS -records "$SCALE_RECORDS" \
    -record-size $SIZE -linger $LINGER -batch-bytes $BATCH -acks 1
  profile_wait produce_many
  row "produce to all $NPARTS partitions" "$RATE" rec/s "$S_ACKS1" "1 partition" ratio_ge 0.50 \
    "acks=1, round robin; per 1M records: broker CPU $(median scale_produce.cpu) s, client CPU $(median scale_produce.ccpu) s"
  row "peak RSS, $NPARTS partitions under load" "$(rss_mib "$SLUICE_PID" VmHWM)" MiB "" "" info ""

  stop "$SLUICE_PID"
  row "clean shutdown, $NPARTS partitions" "$STOP_MS" ms "" "" info "right after the load"
  MIN_PARTS=$NPARTS start_sluice "$DATA"
  row "clean restart, $NPARTS partitions" "$(awk -v m="$READY_MS" 'BEGIN { if (m != "") printf "%.3f", m / 1000 }')" s "" "" value_lt 10 \
    "to first Metadata answer; all $NPARTS partitions led after $(awk -v m="$FULL_READY_MS" 'BEGIN { printf "%.2f", m / 1000 }') s; $(du -sh "$DATA" | cut -f1) of data"
  sleep 3
  row "idle RSS after restart, $NPARTS partitions" "$(rss_mib "$SLUICE_PID" VmRSS)" MiB "" "" value_lt 1024
  stop "$SLUICE_PID"
fi

# ---------------------------------------------------------------- large log

# BENCH_BIG=1: the rates on an empty log against the same topic once it holds
# BENCH_BIG_GIB GiB. One fresh node, one single-partition topic, the same
# producer settings as above. Each phase runs BIG_ROUNDS rounds of: produce
# RECORDS records and consume them back from the tail (just written, so in
# the page cache); then BIG_ROUNDS rounds of: drop the page cache and consume
# the oldest RECORDS records of the topic (the head). The drops come last so
# that every produce finds the page cache as the phase left it (nearly empty
# on the empty log, full of the fill on the big one). The head records are the
# same ones in both phases: those of the first empty-log round.
if [ "$BIG" = 1 ]; then
  BIG_BYTES=$(awk -v g="$BIG_GIB" 'BEGIN { printf "%.0f", g * 1073741824 }')
  BIG_LABEL="$BIG_GIB GiB log"
  DATA=$TMP/sluice-big
  BIG_TOPIC=big-log
  BIG_PART=$DATA/$BIG_TOPIC-0
  AVAIL=$(df -B1 --output=avail "$TMP" | tail -1 | tr -d ' ')
  NEED=$(awk -v b="$BIG_BYTES" 'BEGIN { printf "%.0f", 2.5 * b }')
  gib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1073741824 }'; }
  big_rows_skip() {
    local n
    for n in "large log: fill to $BIG_GIB GiB" "produce, $BIG_LABEL vs empty" \
      "consume tail, $BIG_LABEL vs empty" "consume head (cold), $BIG_LABEL vs empty"; do
      row "$n" "" "" "" "" info "" "SKIP: $1"
    done
  }
  # tailc ADDR TOPIC RECORDS OFFSET: `tailconsume` JSON (offset start, end-N or N).
  tailc() {
    timeout --kill-after=10 $RUN_TIMEOUT "$TOOLS/tailconsume" -brokers "$1" -topic "$2" -records "$3" \
      -offset "$4" -timeout "$((RUN_TIMEOUT - 5))s"
  }
  # drop_cache: flush, drop the page cache if allowed, and set HEAD_CACHE
  # to "dropped=... cached=N%" for the topic's first segment.
  drop_cache() {
    local dropped seg cached=""
    sync
    if (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropped=true; else dropped=false; fi
    seg=$(find "$BIG_PART" -name '*.log' 2>/dev/null | sort | head -1)
    if [ -n "$seg" ] && command -v fincore >/dev/null 2>&1; then
      cached=$(fincore -b -n -o RES,SIZE "$seg" 2>/dev/null | awk '{ r += $1; s += $2 } END { if (s > 0) printf "%.1f", 100 * r / s }')
    fi
    HEAD_CACHE="dropped=$dropped cached=${cached:-?}%"
  }
  # big_phase PHASE: BIG_ROUNDS x (produce, tail consume), then
  # BIG_ROUNDS x (drop the page cache, head consume).
  big_phase() {
    local ph=$1 r
    BIG_PAGECACHE[$ph]=$(awk '$1 == "Cached:" { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
    for r in $(seq "$BIG_ROUNDS"); do
      log "large log: $ph, produce and tail consume, round $r of $BIG_ROUNDS"
      [ "$r" = 1 ] && profile "big_produce_$ph" 3
      measure "big_produce_${ph}_r$r" "$SLUICE_PID" produce "$SLUICE_ADDR" "$BIG_TOPIC" 1 "$RECORDS"
      [ "$r" = 1 ] && profile_wait "big_produce_$ph"
      # Control: the same produce to a new, small topic right after, in the
      # same machine state, which tells the log's size apart from the time.
      [ "$ph" = big ] &&
        measure "big_produce_control_r$r" "$SLUICE_PID" produce "$SLUICE_ADDR" "$BIG_TOPIC-control" 1 "$RECORDS"
      [ "$r" = 1 ] && profile "big_consume_tail_$ph" 2
      measure "big_consume_tail_${ph}_r$r" "$SLUICE_PID" tailc "$SLUICE_ADDR" "$BIG_TOPIC" "$RECORDS" "end-$RECORDS"
      [ "$r" = 1 ] && profile_wait "big_consume_tail_$ph"
    done
    for r in $(seq "$BIG_ROUNDS"); do
      log "large log: $ph, cold head consume, round $r of $BIG_ROUNDS"
      drop_cache
      BIG_CACHE_NOTES+=("$ph r$r: $HEAD_CACHE")
      [ "$r" = 1 ] && profile "big_consume_head_$ph" 2
      measure "big_consume_head_${ph}_r$r" "$SLUICE_PID" tailc "$SLUICE_ADDR" "$BIG_TOPIC" "$RECORDS" start
      [ "$r" = 1 ] && profile_wait "big_consume_head_$ph"
    done
  }

  if [ "$AVAIL" -lt "$NEED" ]; then
    log "large log: only $(gib "$AVAIL") GiB free in $TMP, $(gib "$NEED") GiB needed (2.5 x $BIG_GIB GiB): skipped"
    big_rows_skip "$(gib "$AVAIL") GiB free in $TMP, needs 2.5 x $BIG_GIB = $(gib "$NEED") GiB"
  else
    log "large log: empty topic against the same topic at $BIG_GIB GiB, on a fresh node ($(gib "$AVAIL") GiB free)"
    start_sluice "$DATA"
    timeout 60 "$SLUICE" topic create --brokers "$SLUICE_ADDR" -p 1 "$BIG_TOPIC" "$BIG_TOPIC-control" \
      >"$TMP/big_create.log" 2>&1 || log "topic create failed: $(tail -3 "$TMP/big_create.log")"
    BIG_CACHE_NOTES=()
    declare -A BIG_PAGECACHE=([empty]="?" [big]="?")
    big_phase empty

    # Fill: 64 KiB records from 2 producers, acks=1, in runs of at most
    # 2 GiB until the partition holds BIG_BYTES on disk; then sync, so that
    # the writeback does not fall into the next measurement.
    part_bytes() { du -sb "$BIG_PART" 2>/dev/null | cut -f1; }
    FILL_OK=true FILL_RECORDS=0 FILL_RUNS=0
    FILL_MAX_RUNS=$(awk -v b="$BIG_BYTES" 'BEGIN { printf "%d", b / 2147483648 + 3 }')
    log "large log: filling $BIG_TOPIC to $BIG_GIB GiB with $FILL_SIZE-byte records"
    T_FILL=$(date +%s%N)
    while :; do
      have=$(part_bytes)
      [ "${have:-0}" -ge "$BIG_BYTES" ] && break
      if [ "$FILL_RUNS" -ge "$FILL_MAX_RUNS" ]; then
        log "large log: still $(gib "${have:-0}") GiB after $FILL_RUNS fill runs; giving up"
        FILL_OK=false
        break
      fi
      n=$(awk -v b="$BIG_BYTES" -v h="${have:-0}" -v s=$FILL_SIZE 'BEGIN { n = int((b - h) / s) + 1; print (n > 32768) ? 32768 : n }')
      FILL_RUNS=$((FILL_RUNS + 1))
      if timeout --kill-after=10 $RUN_TIMEOUT "$SLUICE" bench produce --brokers "$SLUICE_ADDR" --topic "$BIG_TOPIC" \
        --acks 1 --records "$n" --record-size $FILL_SIZE --linger $LINGER --batch-bytes $BATCH --partitions 1 \
        --producers 2 --format json >"$TMP/big_fill.json" 2>"$TMP/big_fill.err" &&
        [ "$(jget "$TMP/big_fill.json" .errors)" = 0 ]; then
        FILL_RECORDS=$((FILL_RECORDS + $(jget "$TMP/big_fill.json" .records)))
      else
        log "large log: fill run $FILL_RUNS failed: $(jget "$TMP/big_fill.json" .first_error) $(tail -3 "$TMP/big_fill.err")"
        FILL_OK=false
        break
      fi
    done
    T_SYNC=$(date +%s%N)
    sync
    T_DONE=$(date +%s%N)
    FILL_S=$(awk -v a="$T_FILL" -v b="$T_SYNC" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    SYNC_S=$(awk -v a="$T_SYNC" -v b="$T_DONE" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    PART_BYTES=$(part_bytes)
    DATA_DU=$(du -sh "$DATA" | cut -f1)
    SEGMENTS=$(find "$BIG_PART" -name '*.log' | wc -l)
    FILL_MIBS=$(awk -v r="$FILL_RECORDS" -v s=$FILL_SIZE -v t="$FILL_S" 'BEGIN { if (t > 0) printf "%.0f", r * s / 1048576 / t }')
    note_raw big_fill "{\"ok\": $FILL_OK, \"runs\": $FILL_RUNS, \"records\": $FILL_RECORDS, \"record_size\": $FILL_SIZE,
      \"fill_sec\": $FILL_S, \"sync_sec\": $SYNC_S, \"partition_bytes\": ${PART_BYTES:-null}, \"segments\": $SEGMENTS}"
    log "large log: $(gib "${PART_BYTES:-0}") GiB in $SEGMENTS segments after ${FILL_S}s (+${SYNC_S}s sync)"
    row "large log: fill to $BIG_GIB GiB" "$($FILL_OK && echo "$FILL_S")" s "" "" info "" \
      "$FILL_RECORDS records of $FILL_SIZE bytes in $FILL_RUNS runs, 2 producers, acks=1: ${FILL_MIBS:-?} MiB/s; then sync ${SYNC_S} s"
    row "large log: size on disk (du)" "$(awk -v b="${PART_BYTES:-}" 'BEGIN { if (b != "") printf "%.2f", b / 1073741824 }')" GiB "" "" info "" \
      "the partition directory, $SEGMENTS segments; the whole data dir: $DATA_DU"

    $FILL_OK && big_phase big
    rate_row "produce, $BIG_LABEL vs empty" big_produce_big big_produce_empty "empty log" ratio_ge 0.90 \
      "$RECORDS records appended per round, acks=1; broker CPU per 1M records $(median big_produce_big.cpu) s vs $(median big_produce_empty.cpu) s empty; page cache in use (Cached) before the first produce ${BIG_PAGECACHE[big]} GiB vs ${BIG_PAGECACHE[empty]} GiB empty"
    rate_row "produce, $BIG_LABEL vs new topic" big_produce_big big_produce_control "new topic, same rounds" info "" \
      "control: after each big-log produce, the same produce to a new single-partition topic on the same node"
    row "broker CPU s per 1M, produce, $BIG_LABEL" "$(median big_produce_big.cpu)" s "$(median big_produce_empty.cpu)" "empty log" info "" \
      "new topic in the same rounds: $(median big_produce_control.cpu) s"
    rate_row "consume tail, $BIG_LABEL vs empty" big_consume_tail_big big_consume_tail_empty "empty log" ratio_ge 0.90 \
      "the $RECORDS records just produced, from the page cache"
    rate_row "consume head (cold), $BIG_LABEL vs empty" big_consume_head_big big_consume_head_empty "empty log" info "" \
      "the oldest $RECORDS records after dropping the page cache; first segment before each: $(printf '%s\n' "${BIG_CACHE_NOTES[@]}" | sed 's/^[^:]*: //' | sort | uniq -c | awk '{ printf "%s%dx %s %s", (NR > 1 ? ", " : ""), $1, $2, $3 }')"
    row "sluice peak RSS, $BIG_LABEL" "$(rss_mib "$SLUICE_PID" VmHWM)" MiB "" "" info ""
    stop "$SLUICE_PID"
    rm -rf "$DATA"
    log "large log: removed $DATA"
  fi
fi

# ---------------------------------------------------------------- report

ELAPSED=$(($(date +%s) - T_ALL))
RAWJSON=$(for f in "$RAW"/*.json; do
  [ -e "$f" ] && jq -c --arg n "$(basename "$f" .json)" '{($n): .}' "$f"
done | jq -s 'add // {}')
CONFIG=$(jq -nc --argjson records "$RECORDS" --argjson lat_records "$LAT_RECORDS" --argjson lat_rate "$LAT_RATE" \
  --argjson nats_records "$NATS_RECORDS" --argjson repeat "$REPEAT" --argjson scale "$([ "$SCALE" = 1 ] && echo true || echo false)" \
  --argjson scale_records "$SCALE_RECORDS" --argjson size $SIZE --arg linger $LINGER --argjson batch $BATCH \
  --argjson big "$([ "$BIG" = 1 ] && echo true || echo false)" --arg big_gib "$BIG_GIB" \
  --arg big_rounds "$BIG_ROUNDS" --argjson fill_size $FILL_SIZE \
  --argjson group "$([ "$GROUP" = 1 ] && echo true || echo false)" --arg group_heartbeat "$GROUP_HEARTBEAT" \
  --arg group_rebalances "$GROUP_REBALANCES" --arg group_commit_sec "$GROUP_COMMIT_SEC" \
  '{records: $records, record_size: $size, linger: $linger, batch_bytes: $batch, partitions: 1,
    latency_records: $lat_records, latency_rate: $lat_rate, nats_records: $nats_records, repeat: $repeat,
    scale: $scale, scale_records: $scale_records, big: $big, big_gib: ($big_gib | tonumber? // null),
    big_rounds: ($big_rounds | tonumber? // null),
    big_fill_record_size: $fill_size, group: $group, group_heartbeat: $group_heartbeat,
    group_rebalances: ($group_rebalances | tonumber? // null), group_commit_sec: ($group_commit_sec | tonumber? // null)}')
mkdir -p "$(dirname "$OUT")"
MACHINE=$(jq -c --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '. + {loadavg_end: $load}' <<<"$MACHINE")
jq -s --argjson machine "$MACHINE" --argjson config "$CONFIG" --argjson raw "$RAWJSON" \
  --arg started "$STARTED" --argjson elapsed "$ELAPSED" \
  '{started: $started, elapsed_sec: $elapsed, machine: $machine, config: $config, results: ., raw: $raw}' \
  "$ROWS" >"$OUT"

echo
echo "Sluice bench, $STARTED, $(nproc) cores ($CPU_MODEL), $MEM_GIB GiB, data on $FSTYPE, ${ELAPSED}s"
echo "single node, 1 partition, $SIZE-byte records, franz-go producer: linger $LINGER, $BATCH-byte batches"
echo "load average at start $(jq -r .machine.loadavg_start "$OUT"), at end $(jq -r .machine.loadavg_end "$OUT"); medians of $REPEAT round(s)"
echo
jq -r 'def short: if . >= 100 then round else . * 100 | round / 100 end;
  ["name", "value", "baseline", "ratio", "target", "status"],
  (.results[] | [
    .name,
    (if .value == null then "-" else "\(.value | short) \(.unit)" end),
    (if .baseline == null then "-" else "\(.baseline | short) (\(.baseline_name))" end),
    (if .ratio == null then "-" else "\(.ratio * 100 | round / 100)x" end),
    .target, .status]) | @tsv' "$OUT" |
  awk -F'\t' '{ printf "%-42s %-16s %-26s %-7s %-16s %s\n", $1, $2, $3, $4, $5, $6 }'
echo
jq -r '.results[] | select(.note != "") | "note: \(.name): \(.note)"' "$OUT"
echo "results: $OUT"
MISSES=$(jq '[.results[] | select(.status == "MISS")] | length' "$OUT")
ERRORS=$(jq '[.results[] | select(.status == "ERROR")] | length' "$OUT")
[ "$MISSES" = 0 ] || echo "$MISSES figure(s) missed their target"
# A missed target is a finding, not a failure of the bench; a measurement
# that could not be made is.
[ "$ERRORS" = 0 ] || { echo "$ERRORS measurement(s) failed (ERROR above); logs: BENCH_KEEP=1 keeps $TMP"; exit 1; }
