#!/bin/sh
# References into the protocol document lead somewhere.
#
# Every "§N.M" in the tree (headers, sources, tests, README, NEWS, scripts,
# and the document's own cross-references) must name a section heading of
# doc/protocol.md; outside the document a line citing a section must name
# the document ("protocol.md §7.4").  Nothing may cite the specification
# files the project was written from, which users do not have.  And the
# cross-references the headers and the README make between each other
# (where the address syntax lives, which transports take stdio=DIR) must
# agree with where things are.

set -u

srcdir=${srcdir:-.}
doc=$srcdir/doc/protocol.md

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
finish() {
  echo "test-docrefs: $passed passed, $failed failed"
  [ $failed -eq 0 ]
  exit
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-docrefs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

if [ -f "$doc" ]; then
  ok "doc/protocol.md exists"
else
  not_ok "doc/protocol.md missing"
  finish
fi

# The section numbers the document has: "## 7 Messages", "### 7.4 ...".
sed -n 's/^##* \([0-9][0-9]*\(\.[0-9][0-9]*\)*\) .*/\1/p' "$doc" | sort -u >"$tmp/sections"

# The text files of the tree as distributed (a git checkout or a tarball),
# without build trees.
if git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$srcdir" ls-files -co --exclude-standard | sed "s|^|$srcdir/|" >"$tmp/files"
else
  find "$srcdir" -mindepth 1 \( -name .git -o -name '_build' -o -name 'build*' -o \
    -name autom4te.cache -o -name 'hcsbridge-*' \) -prune -o -type f -print >"$tmp/files"
fi

# Every reference: FILE:LINE:§N.M, one per section number cited.
while IFS= read -r f; do
  [ -f "$f" ] || continue
  grep -HnIo '§[0-9][0-9]*\(\.[0-9][0-9]*\)*' "$f" 2>/dev/null
done <"$tmp/files" >"$tmp/refs"

dangling=0
while IFS= read -r ref; do
  where=${ref%:*}
  num=${ref##*§}
  if ! grep -qx "$num" "$tmp/sections"; then
    not_ok "$where cites §$num, which doc/protocol.md does not have"
    dangling=$((dangling + 1))
  fi
done <"$tmp/refs"
nrefs=$(wc -l <"$tmp/refs")
[ "$dangling" -eq 0 ] && ok "all $nrefs section references exist in doc/protocol.md"

# Outside the document, a line citing a section names the document.
unnamed=$(grep -v "^$doc:" "$tmp/refs" | cut -d: -f1,2 | sort -u | while IFS=: read -r f l; do
  sed -n "${l}p" "$f" | grep -q 'protocol\.md' || echo "$f:$l"
done)
if [ -z "$unnamed" ]; then
  ok "every line citing a section names protocol.md"
else
  not_ok "lines citing a section without naming protocol.md: $unnamed"
fi

# The files the project was written from are not part of it.
spec=$(printf '%s' 'PROTOCOL' '.md')
consts=$(printf '%s' 'CONSTANTS' '.md')
shim=$(printf '%s' 'SHIM' '.md')
style=$(printf '%s' 'STYLE' '.md')
stale=$(grep -v "/test/test-docrefs.sh$" "$tmp/files" | while IFS= read -r f; do
  [ -f "$f" ] && grep -HnI -e "$spec" -e "$consts" -e "$shim" -e "$style" \
    -e 'sec\. [0-9]' "$f"
done)
if [ -z "$stale" ]; then
  ok "no reference to $spec, $consts, $shim or $style"
else
  not_ok "references to documents users do not have: $stale"
fi

# The address syntax is in messages.h (hcsb_addr_parse); what points to it
# must say so.
inc=$srcdir/include/hcsbridge
if grep -q 'hcsb_addr_parse' "$inc/messages.h" &&
  grep -q 'One syntax names every way' "$inc/messages.h"; then
  ok "messages.h holds the address syntax"
else
  not_ok "messages.h does not hold the address syntax"
fi
bad=$(grep -Hn 'see bridge\.h\|see the syntax above' "$inc"/*.h | grep -v "^$inc/messages.h:")
addr_line=$(grep -n 'const char \*address;' "$inc/conn.h" | cut -d: -f1)
if [ -z "$bad" ] && [ -n "$addr_line" ] &&
  sed -n "$((addr_line - 3)),${addr_line}p" "$inc/conn.h" | grep -q 'messages\.h'; then
  ok "conn.h's address points at messages.h"
else
  not_ok "address references that lead elsewhere: $bad (conn.h address at line $addr_line)"
fi
if grep -B6 'int hcsb_bridge_connect(' "$inc/bridge.h" | grep -q 'messages\.h'; then
  ok "bridge.h's connect points at messages.h"
else
  not_ok "bridge.h's hcsb_bridge_connect does not point at messages.h"
fi

# stdio=DIR: which transports take it, said the same way in messages.h and
# the README (spawn: takes no ?options at all).
h_stdio=$(grep -A2 'stdio=DIR  ' "$inc/messages.h" | tr '\n' ' ')
r_stdio=$(tr '\n' ' ' <"$srcdir/README" | grep -o '`stdio=DIR` ([^)]*)' | head -n 1)
if echo "$h_stdio" | grep -q '(unix and fd transports' &&
  grep -q 'stdio: unix and fd)' "$inc/messages.h" &&
  echo "$r_stdio" | grep -q 'unix and fd' && ! echo "$r_stdio" | grep -q spawn; then
  ok "stdio=DIR: unix and fd, in messages.h and the README"
else
  not_ok "stdio=DIR: messages.h '$h_stdio', README '$r_stdio'"
fi

finish
