#!/bin/sh
# hcsb-mklayer (src/tools/hcsb-mklayer.in) on a tree of about 5000 entries
# (small and empty files, subdirectories, an empty directory, symlinks, a
# name with spaces): the image is a whole number of 2 MiB, e2fsck finds it
# clean, it holds exactly the tree's entries (names, types, file sizes,
# link targets; no /lost+found), and files read back byte for byte.  A
# lost+found the tree brings is kept; a --size too small fails clearly.
# Skipped (exit 77) without mkfs.ext4 and debugfs (package e2fsprogs).
set -u

PATH=$PATH:/sbin:/usr/sbin
export PATH
for t in mkfs.ext4 debugfs; do
  if ! command -v "$t" >/dev/null 2>&1; then
    echo "# SKIP test-mklayer: $t not found (apt-get install e2fsprogs)"
    exit 77
  fi
done

builddir=${HCSB_BUILDDIR:-.}
mk=$builddir/src/tools/hcsb-mklayer
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-mklayer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
dbg() { debugfs -R "$1" "$2" 2>/dev/null; }
# Every entry below a directory: type, name, and for non-directories the
# size and link target (directory sizes differ between file systems).
listing() {
  (cd "$1" && find . -mindepth 1 -type d -printf 'd %P\n' &&
    find . -mindepth 1 ! -type d -printf '%y %s %P -> %l\n') | LC_ALL=C sort
}

# The tree: 40 directories of 124 empty or small files, plus a few oddities.
src=$tmp/tree
mkdir "$src" || exit 1
d=1
while [ "$d" -le 40 ]; do
  mkdir "$src/dir$d"
  f=1
  while [ "$f" -le 124 ]; do
    if [ $((f % 4)) -eq 0 ]; then
      echo "file $f of dir $d" >"$src/dir$d/f$f"
    else
      : >"$src/dir$d/f$f"
    fi
    f=$((f + 1))
  done
  d=$((d + 1))
done
mkdir -p "$src/empty" "$src/deep/er/still"
seq 1 30000 >"$src/deep/er/still/numbers" # 168 KiB over many blocks
printf 'spaces\tand a tab\n' >"$src/name with spaces.txt"
ln -s "name with spaces.txt" "$src/link"
ln -s deep/er/still/numbers/../../../../dir7/$(printf 'x%.0s' $(seq 1 64)) "$src/longlink"
n=$(find "$src" -mindepth 1 | wc -l)
if [ "$n" -ge 5000 ]; then
  ok "the tree has $n entries"
else
  not_ok "the tree has only $n entries"
fi

img=$tmp/layer.img
if "$mk" -q "$src" "$img" >"$tmp/out" 2>&1; then
  ok "hcsb-mklayer makes an image of $n entries"
else
  not_ok "hcsb-mklayer failed: $(head -c 500 "$tmp/out")"
  echo "test-mklayer: $passed passed, $failed failed"
  exit 1
fi
size=$(wc -c <"$img" | tr -d ' ')
if [ $((size % 2097152)) -eq 0 ] && [ "$size" -gt 0 ]; then
  ok "the image is $size bytes, a multiple of 2 MiB"
else
  not_ok "the image is $size bytes, not a multiple of 2 MiB"
fi
if command -v e2fsck >/dev/null 2>&1; then
  if e2fsck -fn "$img" >"$tmp/fsck" 2>&1; then
    ok "e2fsck finds the image clean"
  else
    not_ok "e2fsck: $(tail -n 5 "$tmp/fsck")"
  fi
fi

dbg "ls -p /" "$img" >"$tmp/root"
if grep -q '/lost+found/' "$tmp/root"; then
  not_ok "the image has a /lost+found the tree does not have"
elif grep -q '/name with spaces.txt/' "$tmp/root" && grep -q '/dir40/' "$tmp/root"; then
  ok "the image's root has the tree's names and no /lost+found"
else
  not_ok "the image's root: $(head -c 500 "$tmp/root")"
fi

mkdir "$tmp/dump"
dbg "rdump / $tmp/dump" "$img" >/dev/null
listing "$src" >"$tmp/want"
listing "$tmp/dump" >"$tmp/got"
if [ -s "$tmp/want" ] && cmp -s "$tmp/want" "$tmp/got"; then
  ok "the image holds exactly the tree's $(wc -l <"$tmp/got" | tr -d ' ') entries"
else
  not_ok "the image's entries differ from the tree's: $(diff "$tmp/want" "$tmp/got" | head -n 10)"
fi

dbg "cat /deep/er/still/numbers" "$img" >"$tmp/numbers"
if cmp -s "$src/deep/er/still/numbers" "$tmp/numbers"; then
  ok "a multi-block file reads back byte for byte"
else
  not_ok "/deep/er/still/numbers differs ($(wc -c <"$tmp/numbers") bytes back)"
fi
dbg 'cat "/name with spaces.txt"' "$img" >"$tmp/spaces"
if cmp -s "$src/name with spaces.txt" "$tmp/spaces"; then
  ok "a file named with spaces reads back"
else
  not_ok "'/name with spaces.txt' differs: $(head -c 100 "$tmp/spaces")"
fi
if dbg "stat /link" "$img" | grep -q 'Fast link dest: "name with spaces.txt"'; then
  ok "the symlink points where the tree's does"
else
  not_ok "/link: $(dbg "stat /link" "$img" | head -n 5)"
fi

# A lost+found the tree brings is content: kept, with what it holds.
mkdir -p "$tmp/lf/lost+found"
echo kept >"$tmp/lf/lost+found/note"
if "$mk" -q "$tmp/lf" "$tmp/lf.img" >"$tmp/out" 2>&1 &&
  [ "$(dbg "cat /lost+found/note" "$tmp/lf.img")" = kept ]; then
  ok "a lost+found in the tree is kept with its content"
else
  not_ok "the tree's lost+found: $(head -c 300 "$tmp/out")"
fi

# Too small a --size: exit 1 with the reason, no image left behind.
"$mk" -q --size 2 "$src" "$tmp/small.img" >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "could not fit" "$tmp/out" && ! [ -e "$tmp/small.img" ] &&
  [ -z "$(find "$tmp" -maxdepth 1 -name 'small.img.tmp*')" ]; then
  ok "--size 2 for $n entries fails clearly"
else
  not_ok "--size 2: exit $rc: $(head -c 300 "$tmp/out")"
fi

echo "test-mklayer: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
