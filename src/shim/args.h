/* containerd-shim-hcsb-v1 — the command line, as containerd writes it.
 *
 *   containerd-shim-hcsb-v1 [flags] start|delete
 *     -namespace NS        containerd namespace (required)
 *     -id ID               the task (required)
 *     -address PATH        containerd's grpc socket (required by start)
 *     -publish-binary P    containerd's binary (accepted, not used)
 *     -bundle DIR          the bundle (delete; default: the working
 *                          directory, which containerd sets to the bundle)
 *     -debug               debug logging
 *     -v                   print the version and exit
 * Flags follow Go's flag package, as containerd's own shims do: -f v,
 * -f=v, --f v, --f=v; a bool flag takes no value or =true/=false; flags
 * end at the first other argument or "--".  `serve` is the hidden action
 * `start` runs the long-lived shim with.
 *
 * Also here, without I/O: the shim socket's path, named like containerd's
 * shims name theirs (runtime/v2/shim.SocketAddress):
 *   <socket_dir>/<hex SHA-256 of clean(address + "/" + ns + "/" + id)>
 * where clean() is Go's filepath.Clean. */
#ifndef HCSB_SHIM_ARGS_H
#define HCSB_SHIM_ARGS_H

#include <stddef.h>

typedef enum hcsb__shim_action_e {
  HCSB__SHIM_NONE = 0, /* no action: usage */
  HCSB__SHIM_START,
  HCSB__SHIM_DELETE,
  HCSB__SHIM_SERVE,
  HCSB__SHIM_VERSION /* -v */
} hcsb__shim_action_t;

typedef struct hcsb__shim_args_s {
  const char *ns;             /* "" when not given */
  const char *id;             /* "" */
  const char *address;        /* "" */
  const char *publish_binary; /* "" */
  const char *bundle;         /* NULL when not given */
  int debug;
  hcsb__shim_action_t action;
} hcsb__shim_args_t;

/* Parses argv (the strings are kept, not copied).  0, or -EINVAL with a
 * message in err (an unknown flag or action, a flag without its value, a
 * bad bool, an extra argument). */
int hcsb__shim_args_parse(int argc, char **argv, hcsb__shim_args_t *a,
                          char *err, size_t errlen);

/* Go's filepath.Clean of `path` into out (at most outlen bytes with the
 * NUL).  0 or -ENAMETOOLONG. */
int hcsb__shim_path_clean(const char *path, char *out, size_t outlen);

/* The socket path for (address, ns, id) under socket_dir.  0,
 * -ENAMETOOLONG (it would not fit a sockaddr_un), -ENOMEM. */
int hcsb__shim_socket_path(const char *socket_dir, const char *address,
                           const char *ns, const char *id, char *out,
                           size_t outlen);

#endif /* HCSB_SHIM_ARGS_H */
