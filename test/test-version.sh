#!/bin/sh
# One version everywhere an embedder or a user looks: configure's, the top
# entry of NEWS, hcsbridge.pc (and pkg-config), <hcsbridge/version.h> and
# what `hcsbctl --version` reports for itself and for the library it runs
# with.  The libtool version-info of that package version is recorded in
# configure.ac's history and is what the library was built with (its
# soname).  And `configure --help` names no placeholder bug-report address.

set -u

builddir=${HCSB_BUILDDIR:-.}
srcdir=${srcdir:-.}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }

ver=$(sed -n 's/^PACKAGE_VERSION = //p' "$builddir/Makefile")
news=$(sed -n 's/^\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\) .*/\1/p' "$srcdir/NEWS" | head -n 1)
if [ -n "$ver" ] && [ "$ver" = "$news" ]; then
  ok "configure and NEWS agree: $ver"
else
  not_ok "configure says '$ver', the top of NEWS '$news'"
fi

pc=$(sed -n 's/^Version: //p' "$builddir/pkgconfig/hcsbridge.pc")
if [ "$pc" = "$ver" ]; then
  ok "hcsbridge.pc: $pc"
else
  not_ok "hcsbridge.pc says '$pc'"
fi
if command -v pkg-config >/dev/null; then
  mod=$(PKG_CONFIG_PATH="$builddir/pkgconfig" pkg-config --modversion hcsbridge 2>&1)
  if [ "$mod" = "$ver" ]; then
    ok "pkg-config --modversion hcsbridge: $mod"
  else
    not_ok "pkg-config --modversion hcsbridge: $mod"
  fi
fi

h=$builddir/include/hcsbridge/version.h
hstr=$(sed -n 's/^#define HCSB_VERSION_STRING "\(.*\)"$/\1/p' "$h")
hnum=$(sed -n 's/^#define HCSB_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$h" |
  tr '\n' . | sed 's/\.$//')
if [ "$hstr" = "$ver" ] && [ "$hnum" = "$ver" ]; then
  ok "version.h: $hstr ($hnum)"
else
  not_ok "version.h says '$hstr' ('$hnum')"
fi

out=$("$builddir/src/hcsbctl" --version 2>&1)
if [ "$out" = "hcsbctl $ver (libhcsbridge $ver)" ]; then
  ok "hcsbctl --version: $out"
else
  not_ok "hcsbctl --version: $out"
fi

# configure.ac's history line for this version against the values used.
cfg=$srcdir/configure.ac
hist=$(sed -n "s/^#   $ver: \([0-9]*:[0-9]*:[0-9]*\).*/\1/p" "$cfg")
cur=$(sed -n 's/^HCSB_LT_CURRENT=//p' "$cfg")
rev=$(sed -n 's/^HCSB_LT_REVISION=//p' "$cfg")
age=$(sed -n 's/^HCSB_LT_AGE=//p' "$cfg")
if [ -n "$hist" ] && [ "$hist" = "$cur:$rev:$age" ]; then
  ok "version-info $hist is the one recorded for $ver"
else
  not_ok "version-info $cur:$rev:$age, recorded for $ver: '$hist'"
fi
if [ -n "$cur" ] && [ -n "$age" ] &&
  [ -e "$builddir/.libs/libhcsbridge.so.$((cur - age))" ]; then
  ok "the library is libhcsbridge.so.$((cur - age))"
else
  not_ok "no libhcsbridge.so.$((cur - age)) in $builddir/.libs: $(ls "$builddir/.libs" 2>&1 | tr '\n' ' ')"
fi

help=$("$srcdir/configure" --help 2>&1)
report=$(printf '%s\n' "$help" | grep -i 'report bugs' || true)
if printf '%s\n' "$report" |
  grep -Eiq '\.(invalid|test|example|localhost)([/>: ]|$)|example\.(com|net|org)'; then
  not_ok "configure --help names a placeholder address: $report"
else
  ok "configure --help names no placeholder address${report:+: $report}"
fi

echo "test-version: $passed passed, $failed failed"
[ $failed -eq 0 ]
