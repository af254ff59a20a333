/* The bundle's OCI runtime spec, adapted for a container that runs inside
 * the utility VM (what hcsshim's LCOW path and its GCS do to a spec before
 * runc sees it).  Pure: text in, text out, no I/O.
 *
 * containerd writes config.json for runc on this host; inside the VM some
 * of it names things that exist only here, or that the guest has not:
 *
 *   removed                         why
 *   windows, solaris, vm, zos       other platforms' sections
 *   hooks                           host programs; the guest cannot run them
 *   process.apparmorProfile,        the guest kernel has no host LSM policy
 *   process.selinuxLabel,
 *   linux.mountLabel
 *   linux.intelRdt                  host hardware
 *   linux.resources.unified         cgroup v2 keys; the guest's runc uses v1
 *   mounts of host paths            bind mounts (type bind, or a bind/rbind
 *                                   option): their sources are host paths
 *                                   the VM cannot see (no file sharing yet)
 *   namespaces' host paths          /proc/<host pid>/ns/..., /var/run/netns/..
 *                                   mean nothing in the guest: the container
 *                                   gets a namespace of its own instead, or,
 *                                   in a pod, the sandbox container's (network,
 *                                   ipc, uts, and pid when the spec joined
 *                                   one) by its guest PID
 *
 *   rewritten
 *   root.path                       the guest path of the combined layers
 *                                   (when the caller gives one)
 *   linux.cgroupsPath               kept when it is an absolute cgroupfs
 *                                   path; a systemd "slice:prefix:name" or
 *                                   a relative one becomes /hcsb/<id>
 *
 * Everything else (process, mounts of kernel filesystems, resources,
 * devices, seccomp, sysctls, masked/readonly paths, annotations, hostname)
 * is passed on as containerd wrote it. */
#ifndef HCSB_SHIM_SPEC_H
#define HCSB_SHIM_SPEC_H

#include <stddef.h>
#include <stdint.h>

/* Largest config.json the shim reads (containerd's are a few KiB). */
#define HCSB__SPEC_MAX_BYTES (4u << 20)
/* Deepest JSON nesting accepted. */
#define HCSB__SPEC_MAX_DEPTH 64

/* Called once per adaptation with a line saying what changed and why
 * (valid during the call). */
typedef void (*hcsb__spec_note_cb)(void *data, const char *note);

typedef struct hcsb__spec_ctx_s {
  const char *id;        /* the container ID (for cgroupsPath) */
  const char *root_path; /* NULL: leave root.path alone */
  /* A container of a pod: the guest PID of the sandbox container's init;
   * 0 for a container of its own (or the sandbox itself). */
  uint32_t sandbox_pid;
  hcsb__spec_note_cb note; /* may be NULL */
  void *note_data;
} hcsb__spec_ctx_t;

/* Adapts `text` (len bytes, need not be NUL-terminated).  Returns 0 and the
 * adapted spec in *out (NUL-terminated, free()); or -EINVAL (not JSON, not
 * an object, a member of the wrong type, too deep), -E2BIG (over
 * HCSB__SPEC_MAX_BYTES), -ENOMEM.  On failure *out is NULL and, when
 * `err` is not NULL, a static description is stored there. */
int hcsb__spec_adapt(const char *text, size_t len, const hcsb__spec_ctx_t *ctx,
                     char **out, const char **err);

/* An exec's OCI process (`text`, len bytes) for the guest: the host's
 * LSM labels removed (process.apparmorProfile, process.selinuxLabel) and,
 * when width or height is not 0, consoleSize set, so that a terminal has
 * its size from the first instruction on.  Returns 0 and *out (free()), or
 * -EINVAL / -E2BIG / -ENOMEM with *err set. */
int hcsb__spec_adapt_process(const char *text, size_t len, unsigned width,
                             unsigned height, char **out, const char **err);

/* The pod role the CRI annotations give a spec
 * (io.kubernetes.cri.container-type, io.kubernetes.cri.sandbox-id). */
typedef enum hcsb__pod_role_e {
  HCSB__POD_NONE = 0, /* no annotation: a container of its own */
  HCSB__POD_SANDBOX,  /* container-type "sandbox" */
  HCSB__POD_MEMBER    /* container-type "container": joins sandbox_id */
} hcsb__pod_role_t;

/* Reads the role and (for a member) the sandbox ID (copied into sandbox_id,
 * "" otherwise) from the spec's annotations.  Returns 0, or -EINVAL for
 * text that is not a JSON object, an unknown container-type, a member
 * without a sandbox ID or one longer than idlen-1. */
int hcsb__spec_pod_role(const char *text, size_t len, hcsb__pod_role_t *role,
                        char *sandbox_id, size_t idlen);

/* process.terminal of the spec (0 when absent); -EINVAL for bad text. */
int hcsb__spec_terminal(const char *text, size_t len);

#endif
