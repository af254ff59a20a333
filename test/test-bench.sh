#!/bin/sh
# Smoke test of the benchmark programs (bounded; no speed is asserted): the
# fast peer serves, hcsb-bench-raw (on poll() and on libuv, --loop uv) and
# hcsb-bench each print one well-formed RESULT line with ops_s > 0, the
# libuv raw client moves the same bytes per call as the poll() one (also
# when the socket takes only part of a batch), hcsb-bench exits non-zero
# when a call fails, all clients put the same request bytes on the wire,
# the summary shows raw-uv's ratios when there are such lines, the
# pending-call measurement cancels every call, and a small fan-out
# verifies every process's output.

set -u

builddir=${HCSB_BUILDDIR:-.}
bench=$builddir/src/hcsb-bench
raw=$builddir/src/hcsb-bench-raw
peer=$builddir/src/hcsb-fastpeer
case $peer in /*) ;; *) peer=$(pwd)/$peer ;; esac
scale=${HCSB_TEST_TIMEOUT_SCALE:-1}
limit=$((20 * scale))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-bench.XXXXXX") || exit 1
pids=
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

start_peer() {
  sock=$1
  shift
  "$peer" --unix "$sock" "$@" &
  pids="$pids $!"
  i=0
  while [ ! -S "$sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
  [ -S "$sock" ]
}

# A RESULT line of the throughput shape, with every number present and
# ops_s > 0.  $1: the output, $2: impl, $3: mode, $4: conc.
result_ok() {
  printf '%s\n' "$1" | awk -v impl="$2" -v mode="$3" -v conc="$4" '
    /^RESULT / {
      n++
      ok = NF == 15 && $2 == "impl=" impl && $3 ~ /^label=[^ ]+$/ &&
           $4 == "mode=" mode && $5 == "conc=" conc &&
           $6 ~ /^ops_s=[0-9]+$/ && $7 ~ /^p50_us=[0-9]+\.[0-9]+$/ &&
           $8 ~ /^p99_us=[0-9]+\.[0-9]+$/ && $9 ~ /^allocs_op=[0-9]+\.[0-9]+$/ &&
           $10 ~ /^writes_op=[0-9]+\.[0-9]+$/ && $11 ~ /^reads_op=[0-9]+\.[0-9]+$/ &&
           $12 ~ /^turns_op=[0-9]+\.[0-9]+$/ && $13 ~ /^bytes_write=[0-9]+$/ &&
           $14 ~ /^bytes_read=[0-9]+$/ && $15 ~ /^cpu_us_op=[0-9]+\.[0-9]+$/
      split($6, kv, "="); if (kv[2] + 0 <= 0) ok = 0
      # Every call was written and answered through some system call.
      split($10, kv, "="); if (kv[2] + 0 <= 0 || kv[2] + 0 > 1) ok = 0
      split($11, kv, "="); if (kv[2] + 0 <= 0 || kv[2] + 0 > 1) ok = 0
      split($12, kv, "="); if (kv[2] + 0 <= 0) ok = 0 # the loop turned
      split($13, kv, "="); if (kv[2] + 0 < 16) ok = 0
    }
    END { exit !(n == 1 && ok) }'
}

start_peer "$tmp/fast.sock" --record "$tmp/requests" || not_ok "fast peer starts"
addr=unix+connect://$tmp/fast.sock

# Bytes written and read per call (bytes per system call x calls per
# system call) from a RESULT line.
per_call() {
  printf '%s\n' "$1" | awk '/^RESULT / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%.1f %.1f\n", v["writes_op"] * v["bytes_write"], v["reads_op"] * v["bytes_read"]
  }'
}
# The bytes per call of RESULT line $1 match the per_call figures $2 (5%,
# beyond the rounding of writes_op and reads_op to 4 decimals; a window
# boundary can cut a batch of 4000 in flight).
same_bytes() {
  printf '%s\n' "$1" | awk -v want="$2" '/^RESULT / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    split(want, w, " ")
    ok = w[1] > 0 && w[2] > 0 && v["bytes_write"] > 0 && v["bytes_read"] > 0
    lo = (v["writes_op"] - 0.00005) * v["bytes_write"] * 0.95
    hi = (v["writes_op"] + 0.00005) * v["bytes_write"] * 1.05
    if (w[1] < lo || w[1] > hi) ok = 0
    lo = (v["reads_op"] - 0.00005) * v["bytes_read"] * 0.95
    hi = (v["reads_op"] + 0.00005) * v["bytes_read"] * 1.05
    if (w[2] < lo || w[2] > hi) ok = 0
  }
  END { exit !ok }'
}

# The raw client on poll() and on libuv: the same calls, the same bytes
# per call.  4000 in flight makes batches larger than the socket takes at
# once, so the libuv client's uv_write fallback carries the rest.
for cfg in "seq 1 2000" "pipe 16 5000" "pipe 4000 200000"; do
  set -- $cfg
  if [ "$2" -lt 4000 ]; then
    out=$(timeout $limit "$raw" --connect "$addr" --mode "$1" --inflight "$2" \
          --count "$3" --warmup 100)
    rc=$?
    if [ $rc -eq 0 ] && result_ok "$out" raw "$1" "$2"; then
      ok "raw $1 $2"
    else
      not_ok "raw $1 $2 (exit $rc): $out"
    fi
    raw_bytes=$(per_call "$out")
  fi
  out=$(timeout $limit "$raw" --loop uv --connect "$addr" --mode "$1" \
        --inflight "$2" --count "$3" --warmup 100)
  rc=$?
  uv_bytes=$(per_call "$out")
  if [ $rc -eq 0 ] && result_ok "$out" raw-uv "$1" "$2" &&
     same_bytes "$out" "$raw_bytes"; then
    ok "raw-uv $1 $2 ($uv_bytes bytes written, read per call)"
  else
    not_ok "raw-uv $1 $2 (exit $rc; per call $uv_bytes, raw $raw_bytes): $out"
  fi
done

for cfg in "seq 1 2000" "pipe 16 5000" "pipe 256 20000"; do
  set -- $cfg
  out=$(timeout $limit "$bench" --connect "$addr" --mode "$1" --inflight "$2" \
        --count "$3" --warmup 100)
  rc=$?
  if [ $rc -eq 0 ] && result_ok "$out" hcsbridge "$1" "$2"; then
    ok "hcsbridge $1 $2"
  else
    not_ok "hcsbridge $1 $2 (exit $rc): $out"
  fi
done

# The first request of each of the eight connections above, recorded by
# the peer: raw, raw-uv and hcsbridge must have sent identical bodies.
if [ -f "$tmp/requests" ] && [ "$(wc -l <"$tmp/requests")" -eq 8 ] &&
   [ "$(sort -u "$tmp/requests" | wc -l)" -eq 1 ] &&
   grep -q '"Query":"{\\"PropertyTypes\\":\[\\"ProcessList\\"\]}"' "$tmp/requests"; then
  ok "raw, raw-uv and hcsbridge send the same request"
else
  not_ok "raw, raw-uv and hcsbridge send the same request: $(cat "$tmp/requests" 2>/dev/null)"
fi

# Every 50th call fails: hcsb-bench must say so and exit non-zero.
start_peer "$tmp/failing.sock" --fail-every 50 || not_ok "failing peer starts"
out=$(timeout $limit "$bench" --connect "unix+connect://$tmp/failing.sock" \
      --mode pipe --inflight 16 --count 1000 --warmup 0 2>"$tmp/err")
rc=$?
if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q '0x80004005' "$tmp/err"; then
  ok "hcsb-bench fails on a failed call"
else
  not_ok "hcsb-bench fails on a failed call (exit $rc): $out $(cat "$tmp/err")"
fi

out=$(timeout $limit "$bench" --connect "unix+connect://$tmp/nothing.sock" \
      --mode seq --count 10 2>/dev/null)
rc=$?
if [ $rc -eq 1 ] && [ -z "$out" ]; then
  ok "hcsb-bench fails when it cannot connect"
else
  not_ok "hcsb-bench fails when it cannot connect (exit $rc)"
fi

start_peer "$tmp/never.sock" --never-answer || not_ok "never-answer peer starts"
out=$(timeout $limit "$bench" --connect "unix+connect://$tmp/never.sock" \
      --pending 10000 2>"$tmp/err")
rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -Eq \
   '^RESULT impl=hcsbridge label=pending calls=10000 heap_bytes_call=-?[0-9.]+ rss_bytes_call=-?[0-9.]+ allocs_call=[0-9.]+$'; then
  ok "pending calls measured and all cancelled"
else
  not_ok "pending calls (exit $rc): $out $(cat "$tmp/err")"
fi

out=$(timeout $((limit * 2)) "$bench" --fanout 4 --procs 8 --payload 3000 \
      --peer "$peer" --timeout $((limit * 2)) 2>"$tmp/err")
rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -Eq \
   '^RESULT impl=hcsbridge label=fanout conns=4 procs=8 ok=32 max_stall_ms=[0-9.]+ max_iter_cpu_ms=[0-9.]+ heap_conn_idle=-?[0-9]+ rss_conn=-?[0-9]+ max_inflight=32$'; then
  ok "fan-out 4 x 8 with verified stdout"
else
  not_ok "fan-out 4 x 8 (exit $rc): $out $(cat "$tmp/err")"
fi

# Too few descriptors for every process at once (hard limit lowered in a
# subshell): the fan-out keeps fewer in flight and still runs them all;
# with not even room for the connections it says how to raise the limit.
out=$( (ulimit -S -n 100 && ulimit -H -n 100 &&
        exec timeout $((limit * 2)) "$bench" --fanout 8 --procs 8 \
          --peer "$peer" --timeout $((limit * 2))) 2>"$tmp/err")
rc=$?
inflight=$(printf '%s\n' "$out" | sed -n 's/.* max_inflight=\([0-9]*\)$/\1/p')
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q ' ok=64 ' &&
   [ -n "$inflight" ] && [ "$inflight" -lt 64 ] &&
   grep -q 'at most .* processes are in flight' "$tmp/err"; then
  ok "fan-out paced under a low descriptor limit ($inflight in flight)"
else
  not_ok "fan-out under a low descriptor limit (exit $rc): $out $(cat "$tmp/err")"
fi
out=$( (ulimit -S -n 40 && ulimit -H -n 40 &&
        exec timeout $limit "$bench" --fanout 64 --procs 8 --peer "$peer") \
      2>"$tmp/err")
rc=$?
if [ $rc -eq 3 ] && [ -z "$out" ] && grep -q 'raise the hard limit' "$tmp/err"; then
  ok "fan-out refuses a descriptor limit it cannot fit"
else
  not_ok "fan-out with far too few descriptors (exit $rc): $out $(cat "$tmp/err")"
fi

# The summary's verdicts, from saved RESULT lines: the fan-out line says
# met when every process was verified, MISSED otherwise.
bench_script=${srcdir:-.}/scripts/bench
for ok in 32 31; do
  printf '%s\n' \
    "RESULT impl=raw label=calls mode=seq conc=1 ops_s=1000 p50_us=10.0 p99_us=20.0 allocs_op=0.00" \
    "RESULT impl=hcsbridge label=calls mode=seq conc=1 ops_s=900 p50_us=11.0 p99_us=22.0 allocs_op=2.00" \
    "RESULT impl=hcsbridge label=fanout conns=4 procs=8 ok=$ok max_stall_ms=1.5" >"$tmp/saved"
  want=met
  [ $ok -eq 32 ] || want=MISSED
  out=$("$bench_script" --summarize "$tmp/saved" 2>&1)
  # Saved before raw-uv existed: no raw-uv section, nothing else lost.
  if printf '%s\n' "$out" | grep -q "^  fan-out 4 x 8: all processes right  *$ok of 32  *$want\$" &&
     ! printf '%s\n' "$out" | grep -q '^raw-uv '; then
    ok "bench --summarize: fan-out $ok of 32 is $want"
  else
    not_ok "bench --summarize: fan-out $ok of 32: $out"
  fi
done

# With raw-uv lines the summary adds its ratios to raw and the library's
# to it (informational); the targets stay ratios to the poll() client.
printf '%s\n' \
  "RESULT impl=raw label=calls mode=pipe conc=16 ops_s=1000 p50_us=10.0 p99_us=20.0 allocs_op=0.00 rep=1" \
  "RESULT impl=raw-uv label=calls mode=pipe conc=16 ops_s=800 p50_us=12.5 p99_us=20.0 allocs_op=0.00 rep=1" \
  "RESULT impl=hcsbridge label=calls mode=pipe conc=16 ops_s=600 p50_us=15.0 p99_us=22.0 allocs_op=2.00 rep=1" \
  >"$tmp/saved"
out=$("$bench_script" --summarize "$tmp/saved" 2>&1)
if printf '%s\n' "$out" | grep -Eq '^16-in-flight +800 +12\.5us +80\.0% +1\.25x +75\.0% +1\.20x$' &&
   printf '%s\n' "$out" | grep -Eq '^  16 in flight >= 90% of raw ops/s +60\.0% +MISSED$' &&
   printf '%s\n' "$out" | grep -Eq '^ +uv +'; then
  ok "bench --summarize: raw-uv ratios, targets still against raw"
else
  not_ok "bench --summarize with raw-uv lines: $out"
fi

echo "test-bench: $passed passed, $failed failed"
[ $failed -eq 0 ]
