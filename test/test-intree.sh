#!/bin/sh
# The README's steps in the order a new user takes them, on a copy of the
# distribution in a temporary directory: "Build and install" in place
# (./configure && make), then ./scripts/quickstart demo, ./scripts/uvm and
# ./scripts/bench, each of which must find and use that build; builds in
# other directories (scripts/test-all's variants) must still configure,
# from scripts/find-build --vpath-source.  And scripts/uvm keeps its run
# directory only when the VM failed, not for a command's own non-zero exit.
#
# Its build is a plain one of its own, so it runs in the plain variant only
# (a sanitizer or valgrind variant, or distcheck's read-only copy, would
# repeat it unchanged).  The quick start's demo is shown its emulator half
# (its utility VM half is the VM suites' business: here what matters is
# which build it uses).  The scripts/uvm part needs QEMU (and the guest
# kernel scripts/uvm caches); without them it is skipped with a SKIP line.

set -u

builddir=${HCSB_BUILDDIR:-.}
builddir=$(cd "$builddir" && pwd)
scale=${HCSB_TEST_TIMEOUT_SCALE:-1}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
finish() {
  echo "test-intree: $passed passed, $failed failed"
  [ $failed -eq 0 ]
  exit
}

srcdir=${srcdir:-.}
if grep -q '^HCSB_CFLAGS = .*-fsanitize=address' "$builddir/Makefile" 2>/dev/null ||
  [ "$scale" -gt 1 ] || ! [ -w "$srcdir" ] ||
  case $builddir in */_build/sub) true ;; *) false ;; esac; then
  echo "SKIP: test-intree runs in the plain variant only (not under distcheck)"
  finish
fi

# What the outer `make check` exports would point the scripts elsewhere.
unset HCSB_BUILDDIR HCSB_LIBEXECDIR HCSB_GUEST MAKEFLAGS MFLAGS MAKELEVEL

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-intree.XXXXXX") || exit 1
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
src=$tmp/src
out=$tmp/out
err=$tmp/err

if make -C "$builddir" -s distdir distdir="$src" top_distdir="$src" >"$out" 2>&1; then
  ok "a copy of the distribution"
else
  not_ok "make distdir: $(cat "$out")"
  finish
fi
cd "$src" || exit 1

# 1. The README's "Build and install", in place.
if timeout $((900 * scale)) sh -c './configure -q && make -s -j2' >"$out" 2>&1; then
  ok "in place: ./configure && make"
else
  not_ok "in place: ./configure && make: $(tail -20 "$out")"
  finish
fi

if [ "$(./scripts/find-build)" = "$src" ]; then
  ok "scripts/find-build names the tree configured in place"
else
  not_ok "scripts/find-build says $(./scripts/find-build), not $src"
fi

# 2. Then the quick start's demo, its emulator half: a QEMU that does not
# run sends it there.
mkdir -p "$tmp/noqemu"
printf '#!/bin/sh\nexit 1\n' >"$tmp/noqemu/qemu-system-x86_64"
chmod +x "$tmp/noqemu/qemu-system-x86_64"
PATH=$tmp/noqemu:$PATH timeout $((300 * scale)) ./scripts/quickstart demo >"$out" 2>"$err"
rc=$?
if [ $rc -eq 0 ] && grep -q '^== exit code: 7 ' "$out" &&
  grep -q '^quickstart: using the build configured in place' "$out" &&
  ! grep -q 'already configured' "$err"; then
  ok "scripts/quickstart demo uses the build made in place"
else
  not_ok "scripts/quickstart demo (exit $rc): $(cat "$out" "$err")"
fi
if ! [ -e build ]; then
  ok "no second build in ./build"
else
  not_ok "quickstart made ./build beside the build in place"
fi

# 3. Builds in other directories (scripts/test-all's variants): configure
# refuses them from this tree, but not from the copy find-build makes.
mkdir -p "$tmp/vpath-refused" "$tmp/vpath"
if (cd "$tmp/vpath-refused" && "$src/configure" -q) >"$out" 2>&1; then
  not_ok "configure in another directory was expected to refuse this tree"
elif grep -q 'already configured' "$out"; then
  ok "configure refuses another directory for this tree (the case at hand)"
else
  not_ok "configure in another directory failed otherwise: $(cat "$out")"
fi
vsrc=$(./scripts/find-build --vpath-source 2>"$err")
if [ "$vsrc" = "$src/build-src" ] &&
  (cd "$tmp/vpath" && timeout $((300 * scale)) "$vsrc/configure" -q) >"$out" 2>&1 &&
  [ -f "$tmp/vpath/Makefile" ]; then
  ok "a build in another directory configures from find-build --vpath-source"
else
  not_ok "find-build --vpath-source ($vsrc): $(cat "$err" "$out")"
fi

# 4. Then the benchmark, without naming the build, from the tree and from
# elsewhere.
for dir in "$src" "$tmp"; do
  (cd "$dir" && timeout $((120 * scale)) "$src/scripts/bench" --reps 1 \
    --duration 0.2 --no-extras) >"$out" 2>"$err"
  rc=$?
  if [ $rc -eq 0 ] && grep -q '^  sequential p50 <= ' "$out"; then
    ok "scripts/bench run from $dir finds the build"
  else
    not_ok "scripts/bench from $dir (exit $rc): $(cat "$out" "$err")"
  fi
done

# 5. Then a real VM with scripts/uvm.
vm_skip=""
if ! command -v qemu-system-x86_64 >/dev/null || ! qemu-system-x86_64 -version >/dev/null 2>&1; then
  vm_skip="qemu-system-x86_64 does not run here"
elif ! qemu-system-x86_64 -device help 2>/dev/null | grep -q vhost-user-vsock-pci; then
  vm_skip="this QEMU has no vhost-user-vsock-pci device"
elif ! [ -x /bin/busybox ] || ! command -v cpio >/dev/null; then
  vm_skip="busybox-static or cpio missing"
fi

# Runs scripts/uvm with a private TMPDIR (so its run directories can be
# counted); sets rc.  A guest kernel that cannot be fetched skips the rest.
uvm() {
  rm -rf "$tmp/t" && mkdir -p "$tmp/t"
  TMPDIR=$tmp/t timeout $((600 * scale)) ./scripts/uvm -q "$@" >"$out" 2>"$err"
  rc=$?
  if [ $rc -eq 125 ] && grep -q '^uvm: .*\(apt\|download\|kernel\)' "$err"; then
    vm_skip="no guest kernel could be fetched: $(grep '^uvm: ' "$err" | tail -1)"
  fi
}

if [ -z "$vm_skip" ]; then
  uvm -- hcsbctl run -- sh -c 'echo in-vm; exit 4'
fi
if [ -n "$vm_skip" ]; then
  echo "SKIP: scripts/uvm: $vm_skip"
else
  if [ $rc -eq 4 ] && [ "$(cat "$out")" = "in-vm" ] &&
    ! grep -q 'no build yet' "$err" && ! grep -q 'console log kept' "$err" &&
    [ -z "$(ls -A "$tmp/t")" ]; then
    ok "scripts/uvm uses the build made in place; exit 4 keeps nothing"
  else
    not_ok "scripts/uvm (exit $rc): $(cat "$out" "$err"; ls "$tmp/t")"
  fi

  # The guest program killed by a signal is a VM failure: the console stays.
  uvm --guest-cmd "sh -c 'kill -SEGV \$\$'" -- sh -c \
    'until grep -q "guest program exited" "$HCSB_UVM_CONSOLE"; do sleep 0.1; done'
  kept=$(sed -n 's/^uvm: console log kept: \([^ ]*\) (the guest program was killed by signal 11)$/\1/p' "$err")
  if [ $rc -eq 0 ] && [ -n "$kept" ] && [ -f "$kept" ] &&
    grep -q 'guest program exited with status 139' "$kept"; then
    ok "a guest program killed by a signal keeps the console log"
  else
    not_ok "scripts/uvm with a crashing guest (exit $rc): $(cat "$err")"
  fi
fi

finish
