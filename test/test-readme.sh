#!/bin/sh
# The README as a new user follows it: its C example (test/readme-example,
# built by `make check` from the README's text) negotiates with the emulator
# through the `spawn:` address the README shows and exits 0, and exits
# non-zero when it cannot connect; the install notes name LD_LIBRARY_PATH
# and ldconfig; the quick-start commands exist.

set -u

builddir=${HCSB_BUILDDIR:-.}
srcdir=${srcdir:-.}
example=$builddir/test/readme-example
guest=$builddir/src/hcsb-guest
readme=$srcdir/README
scale=${HCSB_TEST_TIMEOUT_SCALE:-1}
limit=$((20 * scale))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-readme.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

out=$(timeout "$limit" "$example" "spawn:exec '$guest'" 2>"$tmp/err")
rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^negotiated protocol 4 with a Linux guest$'
then
  ok "the example negotiates and calls through spawn:"
else
  not_ok "example with the emulator (exit $rc): $out $(cat "$tmp/err")"
fi

# The example run with ADDRESS fails (not by timeout) saying PATTERN.
expect_failure() {
  out=$(timeout "$limit" "$example" "$1" 2>"$tmp/err")
  rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "$2" "$tmp/err"; then
    ok "the example exits $rc: $3"
  else
    not_ok "example: $3 (exit $rc): $out $(cat "$tmp/err")"
  fi
}
expect_failure "unix+connect://$tmp/nobody.sock" '^connect: ' "connecting fails"
expect_failure "bogus://x" '^invalid address: bogus://x$' "an invalid address"

if grep -q 'LD_LIBRARY_PATH' "$readme" && grep -q 'ldconfig' "$readme" &&
   grep -q '^    \./app spawn:' "$readme"; then
  ok "README: LD_LIBRARY_PATH, ldconfig and the spawn: address"
else
  not_ok "README lacks LD_LIBRARY_PATH, ldconfig or './app spawn:'"
fi

qs=$srcdir/scripts/quickstart
if grep -q '^    \./scripts/quickstart demo ' "$readme" &&
   grep -q '^    \./scripts/quickstart test ' "$readme" &&
   [ -x "$qs" ] && grep -q 'demo)' "$qs" && grep -q 'test)' "$qs"; then
  ok "README quick start names commands scripts/quickstart has"
else
  not_ok "README quick start and scripts/quickstart disagree"
fi

# Every option scripts/bench takes is in the README's Benchmark section.
bench_opts=$(sed -n '/^#   scripts\/bench /p' "$srcdir/scripts/bench" | grep -o -- '--[a-z-]*' | sort -u)
section=$(sed -n '/^Benchmark$/,/^Fuzzing$/p' "$readme")
missing=""
for o in $bench_opts; do
  printf '%s\n' "$section" | grep -q -- "$o" || missing="$missing $o"
done
if [ -n "$bench_opts" ] && [ -z "$missing" ]; then
  ok "README documents every scripts/bench option: $(echo $bench_opts)"
else
  not_ok "README's Benchmark section lacks:$missing (options: $bench_opts)"
fi

echo "test-readme: $passed passed, $failed failed"
[ $failed -eq 0 ]
