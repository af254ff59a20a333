/* containerd-shim-hcsb-v1 — configuration.
 *
 * Read from $HCSB_SHIM_CONFIG when set (containerd hands its environment
 * on to shims), else from /etc/hcsbridge/shim.conf (configure
 * --with-shim-config=PATH changes it); a missing default file means all
 * defaults, a missing $HCSB_SHIM_CONFIG file is an error.  The installed
 * sample (shim.conf.sample) documents every key.
 *
 * Syntax: one `key = value` per line; blank lines and lines starting with
 * '#' are skipped; spaces around key and value are dropped; a value may be
 * put in double quotes to keep outer spaces ("" = empty).  Unknown keys,
 * repeated keys (other than guest_file) and bad numbers are errors that
 * name the line: a typo should not silently become a default.
 *
 * Keys (default in brackets; LOCALSTATEDIR, BINDIR, LIBEXECDIR are
 * configure's directories):
 *   guest            [vm] `vm` boots a utility VM per shim; anything else
 *                    is an hcsbridge address (spawn:CMD,
 *                    unix+connect://PATH, ...) of a guest to use instead,
 *                    e.g. `spawn:exec /usr/local/libexec/hcsb-guest` for
 *                    tests without QEMU
 *   image_dir        [LOCALSTATEDIR/cache/hcsbridge/uvm] the default image
 *                    (vmlinuz, initrd.img, manifest), built there with
 *                    `mkuvm -o image_dir` on first use
 *   mkuvm            [BINDIR/hcsb-mkuvm]
 *   kernel           [image_dir/vmlinuz]
 *   initrd           [image_dir/initrd.img]
 *   guest_cmd        [the image's own] the guest program's command line
 *   guest_file       [none] SRC[:DEST] put into the initrd for each run;
 *                    repeatable
 *   kernel_args      [none] appended to the kernel command line
 *   memory_mb        [512]
 *   cpus             [1]
 *   accel            [auto] kvm, tcg, or auto (kvm when /dev/kvm opens)
 *   boot_timeout_ms  [120000] until the guest has answered
 *   time_limit_s     [0] the VM is killed after this long (0: never)
 *   qemu             [qemu-system-x86_64] looked up in PATH unless a path
 *   vsockd           [LIBEXECDIR/hcsb-vsockd]
 *   run_dir          [/run/hcsbridge] per-VM sockets and console logs
 *   layer_dir        [LOCALSTATEDIR/cache/hcsbridge/layers] cached ext4
 *                    layer images, shared by all shims
 *   socket_dir       [/run/containerd/s] where `start` puts shim sockets
 *   log_level        [info] error, warn, info, debug or trace
 */
#ifndef HCSB_SHIM_CONF_H
#define HCSB_SHIM_CONF_H

#include <stddef.h>

#include <hcsbridge/common.h>

#define HCSB__SHIM_CONFIG_ENV "HCSB_SHIM_CONFIG"

typedef struct hcsb__shim_config_s {
  char *path; /* the file read; NULL when none was (all defaults) */

  char *guest; /* NULL = boot a VM; else a library address (validated) */
  char *image_dir;
  char *mkuvm;
  char *kernel; /* never NULL after load: defaults resolved */
  char *initrd;
  int kernel_default; /* 1 when kernel/initrd are image_dir's (so they */
  int initrd_default; /* may be built by mkuvm on first use) */
  char *guest_cmd;    /* NULL = the image's own */
  char **guest_files; /* "SRC[:DEST]" */
  size_t nguest_files;
  char *kernel_args; /* NULL = none */
  unsigned memory_mb;
  unsigned cpus;
  char *accel; /* "kvm", "tcg" or "auto" */
  unsigned boot_timeout_ms;
  unsigned time_limit_s;
  char *qemu;
  char *vsockd;
  char *run_dir;
  char *layer_dir;
  char *socket_dir;
  hcsb_log_level_t log_level;
} hcsb__shim_config_t;

/* Fills `cfg` with the defaults.  0 or -ENOMEM. */
int hcsb__shim_config_defaults(hcsb__shim_config_t *cfg);

/* Applies the text `text` (`len` bytes, need not be NUL-terminated) on top
 * of what `cfg` holds, then resolves kernel/initrd defaults.  `name` is
 * used in messages.  0; -EINVAL with a message like "shim.conf:7: unknown
 * key 'memroy_mb'" in `err` (`errlen` bytes, may be 0); -ENOMEM.  On
 * failure cfg keeps a consistent, freeable state. */
int hcsb__shim_config_parse(hcsb__shim_config_t *cfg, const char *name,
                            const char *text, size_t len, char *err,
                            size_t errlen);

/* Defaults, then the file chosen as above.  0; -ENOENT ($HCSB_SHIM_CONFIG
 * names a missing file); -EINVAL (a bad line; see err); -EFBIG (over
 * 1 MiB); another negative errno from reading; -ENOMEM. */
int hcsb__shim_config_load(hcsb__shim_config_t *cfg, char *err, size_t errlen);

/* The path hcsb__shim_config_load reads (environment or default). */
const char *hcsb__shim_config_path(void);

void hcsb__shim_config_free(hcsb__shim_config_t *cfg);

/* "error", "warn", "info", "debug", "trace" -> level; -EINVAL otherwise. */
int hcsb__shim_log_level_parse(const char *s, hcsb_log_level_t *out);

#endif /* HCSB_SHIM_CONF_H */
