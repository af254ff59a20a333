# Shell helpers for the shim tests: a private containerd (never the
# system's), sourced by test/shim/check.  Everything lives under $CTD_DIR:
#   config.toml, root/, state/, containerd.sock(.ttrpc), containerd.log
# Shim sockets still go under /run/containerd/s (containerd 1.6 fixes
# that path) and the runc shim keeps /run/containerd/runc/NS; ctd_stop
# removes what this instance left there.  ctr would leave its stdio FIFOs
# under /run/containerd/fifo: $CTD_DIR/ctr, which ctr_ and the tests run,
# puts them under $CTD_DIR/fifo.

# ctd_start DIR: writes the config and starts containerd; sets CTD_PID,
# CTD_ADDR, CTD_NS.  Returns non-zero when it does not come up in time.
ctd_start() {
  CTD_DIR=$1
  CTD_ADDR=$CTD_DIR/containerd.sock
  CTD_NS=${CTD_NS:-hcsbtest}
  mkdir -p "$CTD_DIR/root" "$CTD_DIR/state" "$CTD_DIR/opt" "$CTD_DIR/fifo"
  printf '#!/bin/sh\naddr=%s\nns=%s\nfifo=%s\n' "'$CTD_ADDR'" "'$CTD_NS'" \
    "'$CTD_DIR/fifo'" >"$CTD_DIR/ctr"
  cat >>"$CTD_DIR/ctr" <<'SH'
# ctr bound to one private containerd, its FIFOs in its own directory.
case $1 in
run)
  shift
  exec ctr --address "$addr" --namespace "$ns" run --fifo-dir "$fifo" "$@"
  ;;
task)
  case ${2:-} in
  exec | start)
    sub=$2
    shift 2
    exec ctr --address "$addr" --namespace "$ns" task "$sub" \
      --fifo-dir "$fifo" "$@"
    ;;
  esac
  ;;
esac
exec ctr --address "$addr" --namespace "$ns" "$@"
SH
  chmod +x "$CTD_DIR/ctr"
  cat >"$CTD_DIR/config.toml" <<TOML
version = 2
root = "$CTD_DIR/root"
state = "$CTD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTD_ADDR"
[ttrpc]
  address = "$CTD_ADDR.ttrpc"
[debug]
  level = "${CTD_LOG_LEVEL:-info}"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTD_DIR/opt"
TOML
  # Its own session: a ^C at the terminal reaches the test, not containerd.
  setsid containerd --config "$CTD_DIR/config.toml" >"$CTD_DIR/containerd.log" 2>&1 &
  CTD_PID=$!
  echo "$CTD_PID" >"$CTD_DIR/containerd.pid"
  i=0
  while [ $i -lt 300 ]; do
    if [ -S "$CTD_ADDR" ] && ctr_ version >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$CTD_PID" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
  done
  echo "containerd did not start (log: $CTD_DIR/containerd.log)" >&2
  tail -20 "$CTD_DIR/containerd.log" >&2
  return 1
}

ctr_() { "$CTD_DIR/ctr" "$@"; }

# Every process whose command line names this instance's address: shims
# and anything they started with it (matched on the unique socket path,
# never on a program name).
ctd_own_pids() {
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] && continue
    { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null |
      grep -qF -- "-address $CTD_ADDR " && echo "$p"
  done
}

# The shim sockets of this instance's bundles (address files).
ctd_shim_sockets() {
  cat "$CTD_DIR"/state/io.containerd.runtime.v2.task/*/*/address 2>/dev/null |
    sed 's|^unix://||'
}

# ctd_stop: containerd, then its shims (by PID), then what they left in
# /run/containerd.  Idempotent.
ctd_stop() {
  [ -n "${CTD_DIR:-}" ] || return 0
  socks=$(ctd_shim_sockets)
  shims=$(ctd_own_pids)
  if [ -n "${CTD_PID:-}" ]; then
    kill "$CTD_PID" 2>/dev/null
    i=0
    while kill -0 "$CTD_PID" 2>/dev/null && [ $i -lt 50 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -9 "$CTD_PID" 2>/dev/null
    wait "$CTD_PID" 2>/dev/null
    CTD_PID=
  fi
  for p in $shims $(ctd_own_pids); do kill -9 "$p" 2>/dev/null; done
  for s in $socks; do rm -f "$s"; done
  rmdir "/run/containerd/runc/$CTD_NS" 2>/dev/null # only when empty
  # Mounts left under our root (a killed shim's rootfs): innermost first.
  grep -F " $CTD_DIR/" /proc/self/mounts | cut -d' ' -f2 | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  return 0
}
